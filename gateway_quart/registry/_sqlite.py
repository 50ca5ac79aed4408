"""The registry on SQLite: WAL mode, a small pool of connections, every call in a worker thread but one.

The one is the audit row the proxy writes before each call (:meth:`SqliteRegistry._run_quick_write`): a single
small INSERT that, in WAL mode with ``synchronous = NORMAL``, appends to the WAL in the page cache and waits on
nothing else: it runs on the event loop's own connection that never waits for the write lock (busy timeout 0;
when another connection holds it, the write goes to a worker thread like any other) and never checkpoints
(``wal_autocheckpoint = 0``; the pool's connections checkpoint as they commit, and every
:data:`LOOP_CHECKPOINT_EVERY` such writes one is run in a worker thread, so that a run of nothing but these writes
never grows the WAL without bound). Measured under the gateway
benchmark, the thread hop cost ~0.4 ms of CPU and as much latency per proxied call (two thread wake-ups and the
event loop's own); the INSERT itself ~20-40 µs.
"""

from __future__ import annotations

import logging
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
LOOP_CHECKPOINT_EVERY: Final = 1000
"""Writes on the event loop's connection between two checkpoints it asks a worker thread for (see above)."""

log = logging.getLogger("gateway_quart.registry")


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
        self._loop_db: _SqliteDb | None = None  # the event loop thread's (see the module docstring)
        self._loop_writes = 0
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

    def _connect(self, *, loop: bool = False) -> _SqliteDb:
        if self._path != ":memory:":
            parent = os.path.dirname(os.path.abspath(self._path))
            os.makedirs(parent, exist_ok=True)
        conn = sqlite3.connect(
            self._path, timeout=0 if loop else self._busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        if loop:
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        return _SqliteDb(conn)

    async def _run_quick_write(self, fn: Callable[[_SqliteDb], T]) -> T:
        """Run ``fn`` (a few autocommit statements, safe to run again after one of them found the database
        busy) on the event loop's connection, or in a worker thread when another connection holds the write
        lock (see the module docstring)."""
        if self._closed or self._path == ":memory:":  # every :memory: connection is a database of its own
            return await self._run(fn)
        if self._loop_db is None:
            self._loop_db = await trio.to_thread.run_sync(lambda: self._connect(loop=True))
        try:
            result = fn(self._loop_db)
        except (sqlite3.Error, OSError) as exc:
            busy = isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode in (
                sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy:
                raise _registry_error(exc) from exc
        else:
            self._loop_writes += 1
            if self._loop_writes % LOOP_CHECKPOINT_EVERY == 0:
                try:
                    await self._run(_checkpoint)
                except RegistryError as exc:  # the write is done; the next checkpoint will catch up
                    log.warning("WAL checkpoint failed: %s", exc.message)
            return result
        return await self._run(fn)  # busy: wait for the write lock in a worker thread, as every other write does

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
            except (sqlite3.Error, OSError) as exc:
                raise _registry_error(exc) from exc

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        if self._loop_db is not None:
            idle.append(self._loop_db)
            self._loop_db = None
        for db in idle:
            db.conn.close()


def _registry_error(exc: sqlite3.Error | OSError) -> RegistryError:
    """The registry's error for a failed SQLite call (a broken constraint is a :class:`RecordConflict`)."""
    if isinstance(exc, sqlite3.IntegrityError):
        return RecordConflict(f"conflicting record: {exc}")
    if isinstance(exc, OSError):
        return RegistryError(f"registry database unavailable: {exc}")
    return RegistryError(f"registry database error: {exc}")


def _checkpoint(db: _SqliteDb) -> None:
    # PASSIVE: copies what no reader still needs into the database file, never waits for readers or writers.
    db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
