"""The embedded storage backend: one SQLite file, stdlib ``sqlite3`` in worker threads.

Each worker thread gets its own connection (WAL mode, so readers do not wait on the writer). Writes run in
``BEGIN IMMEDIATE`` transactions: the write lock is taken before the current revision is read, so a
compare-and-swap and the quota checks see the same state that they then change, even with many runners'
threads writing at once. A small per-namespace table keeps key counts and byte totals, so the quota checks
are O(namespaces) instead of scanning every record.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, TypeVar, final

import trio

from ...engine import HostScope
from .._errors import HostCallError
from ._backend import Entry, StorageLimits, storage_owner

__all__ = ["DEFAULT_BUSY_TIMEOUT", "DEFAULT_MAX_THREADS", "SqliteStorage"]

DEFAULT_BUSY_TIMEOUT: Final = 5.0
"""Seconds a write waits for another writer's lock before the call fails as ``internal``."""
DEFAULT_MAX_THREADS: Final = 8

T = TypeVar("T")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS ext_storage (
    tenant TEXT NOT NULL,
    owner TEXT NOT NULL,
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    revision INTEGER NOT NULL,
    size INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (tenant, owner, namespace, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ext_storage_namespaces (
    tenant TEXT NOT NULL,
    owner TEXT NOT NULL,
    namespace TEXT NOT NULL,
    keys INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (tenant, owner, namespace)
) WITHOUT ROWID;
"""


@final
class SqliteStorage:
    """Key-value storage in a SQLite file. Create it anywhere; connections open lazily in worker threads.

    Args:
        path: the database file (created with its tables on first use).
        limits: the storage limits, enforced inside each write transaction.
        busy_timeout: how long a writer waits for the database lock.
        max_threads: how many worker threads may use the database at once.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        limits: StorageLimits | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        max_threads: int = DEFAULT_MAX_THREADS,
    ) -> None:
        self._path = str(path)
        self._limits = limits if limits is not None else StorageLimits()
        self._busy_timeout = busy_timeout
        self._max_threads = max_threads
        self._limiter: trio.CapacityLimiter | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._schema_ready = False
        self._closed = False

    @property
    def limits(self) -> StorageLimits:
        return self._limits

    async def get(self, scope: HostScope, namespace: str, key: str) -> Entry:
        self._limits.check_namespace(namespace)
        self._limits.check_key(key)
        owner = storage_owner(scope, allow_extension_fallback=True)

        def work(db: sqlite3.Connection) -> Entry:
            row = db.execute(
                "SELECT value, revision FROM ext_storage WHERE tenant=? AND owner=? AND namespace=? AND key=?",
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

        def work(db: sqlite3.Connection) -> Entry:
            with _write(db):
                row = db.execute(
                    "SELECT revision, size FROM ext_storage WHERE tenant=? AND owner=? AND namespace=? AND key=?",
                    ident,
                ).fetchone()
                current = int(row[0]) if row is not None else 0
                if if_revision is not None and if_revision != current:
                    raise HostCallError("conflict", "revision does not match")
                old_size = int(row[1]) if row is not None else 0
                self._check_quota(db, scope.tenant_id, owner, namespace, is_new=row is None, grow=size - old_size)
                db.execute(
                    "INSERT INTO ext_storage (tenant, owner, namespace, key, value, revision, size, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (tenant, owner, namespace, key) DO UPDATE SET"
                    " value=excluded.value, revision=excluded.revision, size=excluded.size,"
                    " updated_at=excluded.updated_at",
                    (*ident, data, current + 1, size, time.time()),
                )
                db.execute(
                    "INSERT INTO ext_storage_namespaces (tenant, owner, namespace, keys, bytes) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (tenant, owner, namespace) DO UPDATE SET"
                    " keys=keys+excluded.keys, bytes=bytes+excluded.bytes",
                    (scope.tenant_id, owner, namespace, 1 if row is None else 0, size - old_size),
                )
            return Entry(namespace, key, data, current + 1)

        return await self._run(work)

    async def delete(self, scope: HostScope, namespace: str, key: str) -> None:
        self._limits.check_namespace(namespace)
        self._limits.check_key(key)
        owner = storage_owner(scope, allow_extension_fallback=True)

        def work(db: sqlite3.Connection) -> None:
            with _write(db):
                row = db.execute(
                    "DELETE FROM ext_storage WHERE tenant=? AND owner=? AND namespace=? AND key=? RETURNING size",
                    (scope.tenant_id, owner, namespace, key),
                ).fetchone()
                if row is None:
                    raise HostCallError("missing", "no such key")
                db.execute(
                    "UPDATE ext_storage_namespaces SET keys=keys-1, bytes=bytes-?"
                    " WHERE tenant=? AND owner=? AND namespace=?",
                    (int(row[0]), scope.tenant_id, owner, namespace),
                )
                db.execute(
                    "DELETE FROM ext_storage_namespaces WHERE tenant=? AND owner=? AND namespace=? AND keys<=0",
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

        def work(db: sqlite3.Connection) -> tuple[list[Entry], str | None]:
            rows = db.execute(
                "SELECT key, value, revision FROM ext_storage WHERE tenant=? AND owner=? AND namespace=? AND key>?"
                " ORDER BY key LIMIT ?",
                (scope.tenant_id, owner, namespace, cursor or "", page + 1),
            ).fetchall()
            entries = [Entry(namespace, str(k), bytes(v), int(r)) for k, v, r in rows[:page]]
            return entries, (entries[-1].key if len(rows) > page else None)

        return await self._run(work)

    async def usage(self, scope: HostScope) -> tuple[int, int, int]:
        """``(namespaces, keys, bytes)`` held by the scope's owner (for operators and tests)."""
        owner = storage_owner(scope, allow_extension_fallback=True)

        def work(db: sqlite3.Connection) -> tuple[int, int, int]:
            row = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(keys), 0), COALESCE(SUM(bytes), 0) FROM ext_storage_namespaces"
                " WHERE tenant=? AND owner=?",
                (scope.tenant_id, owner),
            ).fetchone()
            return int(row[0]), int(row[1]), int(row[2])

        return await self._run(work)

    async def aclose(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for db in connections:
            db.close()

    def _check_quota(
        self, db: sqlite3.Connection, tenant: str, owner: str, namespace: str, *, is_new: bool, grow: int
    ) -> None:
        limits = self._limits
        rows = db.execute(
            "SELECT namespace, keys, bytes FROM ext_storage_namespaces WHERE tenant=? AND owner=?", (tenant, owner)
        ).fetchall()
        this = next((row for row in rows if row[0] == namespace), None)
        if is_new and this is None and len(rows) >= limits.max_namespaces:
            raise HostCallError("denied", f"more than {limits.max_namespaces} namespaces")
        if is_new and this is not None and int(this[1]) >= limits.max_keys_per_namespace:
            raise HostCallError("denied", f"more than {limits.max_keys_per_namespace} keys in the namespace")
        if grow > 0 and sum(int(row[2]) for row in rows) + grow > limits.max_total_bytes:
            raise HostCallError("denied", f"install storage over {limits.max_total_bytes} bytes")

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._limiter is None:
            self._limiter = trio.CapacityLimiter(self._max_threads)

        def in_thread() -> T:
            try:
                return work(self._connection())
            except sqlite3.Error as exc:
                raise HostCallError("internal", f"storage database error: {type(exc).__name__}") from exc

        return await trio.to_thread.run_sync(in_thread, limiter=self._limiter)

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            return db
        with self._lock:
            if self._closed:
                raise HostCallError("internal", "storage is closed")
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE), never opened behind our back.
            db = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            if not self._schema_ready:
                db.executescript(_SCHEMA)
                self._schema_ready = True
            self._connections.append(db)
        self._local.db = db
        return db


@contextmanager
def _write(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception (including a refused write)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
