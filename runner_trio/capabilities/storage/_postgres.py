"""The fleet's storage backend: PostgreSQL through psycopg 3, pooled connections used from worker threads.

Every runner of a fleet points ``RUNNER_STORAGE_URL`` at the same database. A write is one transaction that
first takes a transaction-scoped advisory lock on its (tenant, owner): the counterpart of SQLite's
``BEGIN IMMEDIATE``, per install instead of per file. The compare-and-swap and the quota checks then read the
state they change, whichever runner, process or thread writes at the same time; writes of different installs
never wait on each other. Reads take no lock (each statement sees committed data).

The schema is versioned (``ext_storage_migrations``) and migrated once across replicas on first use
(``servicekit.migrate_postgres``). Values are ``BYTEA``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar, final

import psycopg
import trio
from psycopg_pool import ConnectionPool

from servicekit import DEFAULT_STATEMENT_TIMEOUT_S, SchemaTooNew, migrate_postgres, statement_timeout

from ...engine import HostScope
from .._errors import HostCallError
from ._backend import Entry, StorageLimits, storage_owner

__all__ = ["DEFAULT_POSTGRES_CONNECTIONS", "MIGRATIONS", "PostgresStorage"]

DEFAULT_POSTGRES_CONNECTIONS: Final = 8
"""Connections one runner process keeps at most (and storage calls it runs at once)."""
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
"""Seconds a call waits for a pooled connection before it fails as ``internal``."""
_MIGRATION_LOCK_KEY: Final = 0x6578_7473_746F_0001

T = TypeVar("T")


@dataclass(frozen=True)
class _Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: Final = (
    _Migration(1, "initial", (
        """CREATE TABLE ext_storage (
            tenant TEXT NOT NULL,
            owner TEXT NOT NULL,
            namespace TEXT NOT NULL,
            key TEXT COLLATE "C" NOT NULL,
            value BYTEA NOT NULL,
            revision BIGINT NOT NULL,
            size BIGINT NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (tenant, owner, namespace, key)
        )""",
        """CREATE TABLE ext_storage_namespaces (
            tenant TEXT NOT NULL,
            owner TEXT NOT NULL,
            namespace TEXT NOT NULL,
            keys BIGINT NOT NULL,
            bytes BIGINT NOT NULL,
            PRIMARY KEY (tenant, owner, namespace)
        )""",
    )),
)
"""The schema, one numbered step at a time (never edited once released, only followed).
Keys sort by byte (``COLLATE "C"``), as in SQLite, whatever the database's locale."""


@final
class PostgresStorage:
    """Key-value storage in a PostgreSQL database. Create it anywhere: the pool opens on first use.

    Args:
        url: ``postgresql://user[:password]@host[:port]/dbname``.
        limits: the storage limits, enforced inside each write transaction.
        max_connections: pooled connections (and worker threads using them) at most.
        connect_timeout: how long a call waits for a connection.
        statement_timeout_s: how long one statement may run, a row lock wait included
            (``servicekit.statement_timeout``).
    """

    def __init__(
        self,
        url: str,
        *,
        limits: StorageLimits | None = None,
        max_connections: int = DEFAULT_POSTGRES_CONNECTIONS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S,
    ) -> None:
        self._limits = limits if limits is not None else StorageLimits()
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url, min_size=1, max_size=max_connections, timeout=connect_timeout, open=False,
            kwargs={"autocommit": True}, configure=statement_timeout(statement_timeout_s), name="ext-storage",
        )
        self._connect_timeout = connect_timeout
        self._max_connections = max_connections
        self._limiter: trio.CapacityLimiter | None = None
        self._lock = threading.Lock()
        self._ready = False
        self._closed = False

    @property
    def limits(self) -> StorageLimits:
        return self._limits

    async def get(self, scope: HostScope, namespace: str, key: str) -> Entry:
        self._limits.check_namespace(namespace)
        self._limits.check_key(key)
        owner = storage_owner(scope, allow_extension_fallback=True)

        def work(db: psycopg.Connection[Any]) -> Entry:
            row = db.execute(
                "SELECT value, revision FROM ext_storage WHERE tenant=%s AND owner=%s AND namespace=%s AND key=%s",
                (scope.tenant_id, owner, namespace, key),
            ).fetchone()
            if row is None:
                raise HostCallError("missing", "no such key")
            return Entry(namespace, key, bytes(row[0]), int(row[1]))

        return await self._run(work)

    async def put(
        self, scope: HostScope, namespace: str, key: str, value: bytes, if_revision: int | None = None
    ) -> Entry:
        limits = self._limits
        limits.check_namespace(namespace)
        limits.check_key(key)
        limits.check_value(value)
        limits.check_revision(if_revision)
        owner = storage_owner(scope, allow_extension_fallback=True)
        data = bytes(value)
        size = len(key.encode("utf-8")) + len(data)
        ident = (scope.tenant_id, owner, namespace, key)

        def work(db: psycopg.Connection[Any]) -> Entry:
            with db.transaction():
                _lock_owner(db, scope.tenant_id, owner)
                row = db.execute(
                    "SELECT revision, size FROM ext_storage WHERE tenant=%s AND owner=%s AND namespace=%s AND key=%s",
                    ident,
                ).fetchone()
                current = int(row[0]) if row is not None else 0
                if if_revision is not None and if_revision != current:
                    raise HostCallError("conflict", "revision does not match")
                old_size = int(row[1]) if row is not None else 0
                self._check_quota(db, scope.tenant_id, owner, namespace, is_new=row is None, grow=size - old_size)
                db.execute(
                    "INSERT INTO ext_storage (tenant, owner, namespace, key, value, revision, size, updated_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (tenant, owner, namespace, key) DO UPDATE SET"
                    " value=EXCLUDED.value, revision=EXCLUDED.revision, size=EXCLUDED.size,"
                    " updated_at=EXCLUDED.updated_at",
                    (*ident, data, current + 1, size, time.time()),
                )
                db.execute(
                    "INSERT INTO ext_storage_namespaces AS n (tenant, owner, namespace, keys, bytes)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tenant, owner, namespace) DO UPDATE SET"
                    " keys=n.keys+EXCLUDED.keys, bytes=n.bytes+EXCLUDED.bytes",
                    (scope.tenant_id, owner, namespace, 1 if row is None else 0, size - old_size),
                )
            return Entry(namespace, key, data, current + 1)

        return await self._run(work)

    async def delete(self, scope: HostScope, namespace: str, key: str) -> None:
        self._limits.check_namespace(namespace)
        self._limits.check_key(key)
        owner = storage_owner(scope, allow_extension_fallback=True)

        def work(db: psycopg.Connection[Any]) -> None:
            with db.transaction():
                _lock_owner(db, scope.tenant_id, owner)
                row = db.execute(
                    "DELETE FROM ext_storage WHERE tenant=%s AND owner=%s AND namespace=%s AND key=%s RETURNING size",
                    (scope.tenant_id, owner, namespace, key),
                ).fetchone()
                if row is None:
                    raise HostCallError("missing", "no such key")
                db.execute(
                    "UPDATE ext_storage_namespaces SET keys=keys-1, bytes=bytes-%s"
                    " WHERE tenant=%s AND owner=%s AND namespace=%s",
                    (int(row[0]), scope.tenant_id, owner, namespace),
                )
                db.execute(
                    "DELETE FROM ext_storage_namespaces WHERE tenant=%s AND owner=%s AND namespace=%s AND keys<=0",
                    (scope.tenant_id, owner, namespace),
                )

        await self._run(work)

    async def list_entries(
        self, scope: HostScope, namespace: str, cursor: str | None = None, limit: int | None = None
    ) -> tuple[list[Entry], str | None]:
        self._limits.check_namespace(namespace)
        self._limits.check_cursor(cursor)
        owner = storage_owner(scope, allow_extension_fallback=True)
        page = self._limits.page(limit)

        def work(db: psycopg.Connection[Any]) -> tuple[list[Entry], str | None]:
            # Keys are COLLATE "C": byte order, as SQLite's, whatever the database's locale.
            rows = db.execute(
                "SELECT key, value, revision FROM ext_storage WHERE tenant=%s AND owner=%s AND namespace=%s"
                " AND key > %s ORDER BY key LIMIT %s",
                (scope.tenant_id, owner, namespace, cursor or "", page + 1),
            ).fetchall()
            entries = [Entry(namespace, str(k), bytes(v), int(r)) for k, v, r in rows[:page]]
            return entries, (entries[-1].key if len(rows) > page else None)

        return await self._run(work)

    async def usage(self, scope: HostScope) -> tuple[int, int, int]:
        """``(namespaces, keys, bytes)`` held by the scope's owner (for operators and tests)."""
        owner = storage_owner(scope, allow_extension_fallback=True)

        def work(db: psycopg.Connection[Any]) -> tuple[int, int, int]:
            row = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(keys), 0), COALESCE(SUM(bytes), 0) FROM ext_storage_namespaces"
                " WHERE tenant=%s AND owner=%s",
                (scope.tenant_id, owner),
            ).fetchone()
            assert row is not None
            return int(row[0]), int(row[1]), int(row[2])

        return await self._run(work)

    async def aclose(self) -> None:
        with self._lock:
            self._closed = True
        await trio.to_thread.run_sync(self._pool.close)

    def _check_quota(
        self, db: psycopg.Connection[Any], tenant: str, owner: str, namespace: str, *, is_new: bool, grow: int
    ) -> None:
        limits = self._limits
        rows = db.execute(
            "SELECT namespace, keys, bytes FROM ext_storage_namespaces WHERE tenant=%s AND owner=%s", (tenant, owner)
        ).fetchall()
        this = next((row for row in rows if row[0] == namespace), None)
        if is_new and this is None and len(rows) >= limits.max_namespaces:
            raise HostCallError("denied", f"more than {limits.max_namespaces} namespaces")
        if is_new and this is not None and int(this[1]) >= limits.max_keys_per_namespace:
            raise HostCallError("denied", f"more than {limits.max_keys_per_namespace} keys in the namespace")
        if grow > 0 and sum(int(row[2]) for row in rows) + grow > limits.max_total_bytes:
            raise HostCallError("denied", f"install storage over {limits.max_total_bytes} bytes")

    def _open(self) -> None:
        with self._lock:
            if self._closed:
                raise HostCallError("internal", "storage is closed")
            if self._ready:
                return
            self._pool.open(wait=True, timeout=self._connect_timeout)
            with self._pool.connection() as db:
                try:
                    migrate_postgres(db, table="ext_storage_migrations", lock_key=_MIGRATION_LOCK_KEY,
                                     migrations=MIGRATIONS)
                except SchemaTooNew as exc:
                    raise HostCallError("internal", str(exc)) from None
            self._ready = True

    async def _run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        if self._limiter is None:
            self._limiter = trio.CapacityLimiter(self._max_connections)

        def in_thread() -> T:
            try:
                if not self._ready:
                    self._open()
                with self._pool.connection() as db:
                    return work(db)
            except psycopg.Error as exc:
                raise HostCallError("internal", f"storage database error: {type(exc).__name__}") from exc

        return await trio.to_thread.run_sync(in_thread, limiter=self._limiter)


def _lock_owner(db: psycopg.Connection[Any], tenant: str, owner: str) -> None:
    # Held until the transaction ends; a hash collision between two installs only makes them take turns.
    db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{tenant}|{owner}",))
