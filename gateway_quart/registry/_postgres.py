"""The registry on PostgreSQL: psycopg 3 connections from a pool, every call in a trio worker thread.

The repository code is ``_repository.py``'s, shared with SQLite; this module adapts psycopg to its ``Db``
interface (``?`` becomes ``%s``; a write step is a transaction under a transaction-scoped advisory lock, the
counterpart of SQLite's ``BEGIN IMMEDIATE``, so concurrent registrations from several gateways serialise
instead of failing on a unique constraint) and migrates once across replicas (``_migrations.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Final, TypeVar, final

import psycopg
import trio
from psycopg_pool import ConnectionPool

from servicekit import DEFAULT_STATEMENT_TIMEOUT_S, statement_timeout

from .._errors import RecordConflict, RegistryError
from ._db import Cursor
from ._migrations import apply_postgres_migrations
from ._repository import SqlRegistry

T = TypeVar("T")

DEFAULT_POSTGRES_POOL_SIZE: Final = 8
"""Connections one gateway process keeps at most (and calls it runs at once)."""
DEFAULT_CONNECT_TIMEOUT_S: Final = 10.0
"""How long a call waits for a pooled connection (and start-up for the first one)."""
WRITE_LOCK_KEY: Final = 0x6578_7472_6567_0002
"""The advisory lock that a registry write step holds (see the module docstring)."""


@lru_cache(maxsize=256)
def _placeholders(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


@final
class _PostgresDb:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(_placeholders(sql), tuple(params))

    @contextmanager
    def write(self) -> Iterator[None]:
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
            yield


@final
class PostgresRegistry(SqlRegistry):
    """:class:`~gateway_quart.registry.Registry` on a PostgreSQL database (``postgresql://user@host:port/db``).

    Create with :meth:`open` (opens the pool and migrates the schema). Connections are in autocommit mode:
    a single statement commits at once, a write step is an explicit transaction.
    """

    _version_order = "seq"

    def __init__(self, pool: ConnectionPool[psycopg.Connection[Any]], *, pool_size: int) -> None:
        self._pool = pool
        self._slots = trio.CapacityLimiter(pool_size)
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        pool_size: int = DEFAULT_POSTGRES_POOL_SIZE,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S,
    ) -> PostgresRegistry:
        """Open a pool on ``url`` and bring the schema up to date. Each statement may run ``statement_timeout_s``,
        a lock wait included (``servicekit.statement_timeout``; the migration is not limited).

        Raises:
            RegistryError: the server cannot be reached or the schema cannot be migrated.
        """
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url, min_size=1, max_size=pool_size, timeout=connect_timeout_s, open=False,
            kwargs={"autocommit": True}, configure=statement_timeout(statement_timeout_s), name="registry",
        )
        registry = cls(pool, pool_size=pool_size)
        try:
            await trio.to_thread.run_sync(lambda: pool.open(wait=True, timeout=connect_timeout_s))
            await registry._run(lambda db: apply_postgres_migrations(db.conn))
        except BaseException as exc:
            await trio.to_thread.run_sync(pool.close)
            if isinstance(exc, psycopg.Error):  # PoolTimeout included
                raise RegistryError(f"registry database unavailable: {type(exc).__name__}") from exc
            raise
        return registry

    async def _run(self, fn: Callable[[_PostgresDb], T]) -> T:
        if self._closed:
            raise RegistryError("registry is closed")

        def in_thread() -> T:
            with self._pool.connection() as conn:
                return fn(_PostgresDb(conn))

        try:
            return await trio.to_thread.run_sync(in_thread, limiter=self._slots)
        except psycopg.IntegrityError as exc:
            raise RecordConflict(f"conflicting record: {exc.diag.message_primary or exc}") from exc
        except psycopg.Error as exc:
            # The message may quote the URL's host; the connection string (and a password in it) never.
            raise RegistryError(f"registry database error: {type(exc).__name__}: {exc.diag.message_primary or ''}"
                                ) from exc

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await trio.to_thread.run_sync(self._pool.close)
