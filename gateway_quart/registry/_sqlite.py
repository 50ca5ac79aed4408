"""The registry on SQLite: WAL mode, a small pool of connections, every call in a worker thread."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final, TypeVar, final

import trio

from .._errors import RecordConflict, RegistryError
from ._db import Cursor
from ._migrations import apply_migrations
from ._repository import SqlRegistry, utc_now

T = TypeVar("T")

DEFAULT_POOL_SIZE: Final = 4
DEFAULT_BUSY_TIMEOUT_S: Final = 5.0


@final
class _SqliteDb:
    """:class:`Db` over one ``sqlite3`` connection (``isolation_level=None``: transactions are explicit)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(sql, params)

    @contextmanager
    def write(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so read-then-write steps cannot deadlock on upgrade.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")


@final
class SqliteRegistry(SqlRegistry):
    """:class:`~gateway_quart.registry.Registry` on one SQLite file.

    Create with :meth:`open` (creates the directory, the file and the schema). Connections are shared by
    at most ``pool_size`` concurrent calls; each runs in a trio worker thread, so the event loop never
    waits on disk.
    """

    def __init__(self, path: str, *, pool_size: int, busy_timeout_s: float) -> None:
        self._path = path
        self._busy_timeout_s = busy_timeout_s
        self._slots = trio.Semaphore(pool_size)
        self._idle: list[_SqliteDb] = []
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> SqliteRegistry:
        """Open (and migrate) the registry at ``path``.

        Raises:
            RegistryError: the file cannot be created or the schema cannot be brought up to date.
        """
        registry = cls(path, pool_size=pool_size, busy_timeout_s=busy_timeout_s)
        await registry._run(lambda db: apply_migrations(db.conn, now=utc_now()))
        return registry

    @property
    def path(self) -> str:
        return self._path

    _version_order = "rowid"

    def _connect(self) -> _SqliteDb:
        if self._path != ":memory:":
            parent = os.path.dirname(os.path.abspath(self._path))
            os.makedirs(parent, exist_ok=True)
        conn = sqlite3.connect(
            self._path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        return _SqliteDb(conn)

    async def _run(self, fn: Callable[[_SqliteDb], T]) -> T:
        if self._closed:
            raise RegistryError("registry is closed")
        async with self._slots:
            try:
                conn = self._idle.pop() if self._idle else await trio.to_thread.run_sync(self._connect)
                try:
                    return await trio.to_thread.run_sync(fn, conn)
                finally:
                    self._idle.append(conn)
            except sqlite3.IntegrityError as exc:
                raise RecordConflict(f"conflicting record: {exc}") from exc
            except sqlite3.Error as exc:
                raise RegistryError(f"registry database error: {exc}") from exc
            except OSError as exc:
                raise RegistryError(f"registry database unavailable: {exc}") from exc

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for db in idle:
            db.conn.close()
