"""Records in PostgreSQL: shared by every runner of a fleet that points at the same database.

A claim is one statement: ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <the record there has expired>
RETURNING``. PostgreSQL makes it atomic across connections: exactly one of several runners claiming the
same key at once gets a row back (a new record, or an expired one taken over); the others read what is
there. Storing a result and releasing a claim are single statements that check the claim is still the
caller's. psycopg's pooled connections are used from trio's worker threads.

The schema is versioned (``idempotency_migrations``) and migrated once across replicas on first use
(``servicekit.migrate_postgres``). Expired records are deleted at most once per ``purge_interval``.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar, final

import psycopg
import trio
from psycopg_pool import ConnectionPool

from servicekit import DEFAULT_STATEMENT_TIMEOUT_S, SchemaTooNew, migrate_postgres, statement_timeout

from ._errors import StoreUnavailable
from ._records import Claimed, Done, Held, RecordKey

__all__ = ["DEFAULT_POSTGRES_CONNECTIONS", "PostgresRecords"]

DEFAULT_POSTGRES_CONNECTIONS: Final = 4
DEFAULT_CONNECT_TIMEOUT: Final = 2.0
"""Seconds a call waits for a connection: how long a keyed request waits on a database that does not answer."""
DEFAULT_PURGE_INTERVAL: Final = 60.0
_CLAIM_ATTEMPTS: Final = 3  # a record may be released between the refused claim and the read that follows
_MIGRATION_LOCK_KEY: Final = 0x6578_7469_6465_0001

T = TypeVar("T")


@dataclass(frozen=True)
class _Migration:
    version: int
    name: str
    statements: tuple[str, ...]


_MIGRATIONS: Final = (
    _Migration(1, "initial", (
        """CREATE TABLE idempotency (
            tenant TEXT NOT NULL,
            extension TEXT NOT NULL,
            key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            owner TEXT NOT NULL,
            lease_until DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            result BYTEA,
            PRIMARY KEY (tenant, extension, key)
        )""",
        "CREATE INDEX idempotency_expiry ON idempotency (expires_at)",
    )),
)

_CLAIM: Final = (
    "INSERT INTO idempotency AS i (tenant, extension, key, fingerprint, owner, lease_until, expires_at, result)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, NULL)"
    " ON CONFLICT (tenant, extension, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,"
    " owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until, expires_at = EXCLUDED.expires_at, result = NULL"
    " WHERE i.expires_at <= %s"
    " RETURNING 1"
)


@final
class PostgresRecords:
    """Idempotency records in the PostgreSQL database at ``url`` (``postgresql://user@host:port/db``)."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = DEFAULT_POSTGRES_CONNECTIONS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        purge_interval: float = DEFAULT_PURGE_INTERVAL,
        clock: Callable[[], float] = time.time,
        statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S,
    ) -> None:
        self._url = url
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url, min_size=1, max_size=max_connections, timeout=connect_timeout, open=False,
            kwargs={"autocommit": True}, configure=statement_timeout(statement_timeout_s), name="idempotency",
        )
        self._connect_timeout = connect_timeout
        self._limiter = trio.CapacityLimiter(max_connections)
        self._purge_interval = purge_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._ready = False
        self._purged_at = 0.0

    @property
    def name(self) -> str:
        parts = urllib.parse.urlsplit(self._url)
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"  # no user, password

    def _open(self) -> None:
        with self._lock:
            if self._ready:
                return
            self._pool.open(wait=True, timeout=self._connect_timeout)
            with self._pool.connection() as db:
                try:
                    migrate_postgres(db, table="idempotency_migrations", lock_key=_MIGRATION_LOCK_KEY,
                                     migrations=_MIGRATIONS)
                except SchemaTooNew as exc:
                    raise StoreUnavailable(f"{self.name}: {exc}") from None
            self._ready = True

    async def _call(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        def in_thread() -> T:
            if not self._ready:
                self._open()
            with self._pool.connection() as db:
                return work(db)

        try:
            return await trio.to_thread.run_sync(in_thread, limiter=self._limiter)
        except psycopg.Error as exc:
            raise StoreUnavailable(f"{self.name}: {type(exc).__name__}: {exc.diag.message_primary or exc}") from exc

    async def claim(
        self, key: RecordKey, fingerprint: str, owner: str, *, lease_until: float, ttl: float
    ) -> Claimed | Held | Done:
        def work(db: psycopg.Connection[Any]) -> Claimed | Held | Done:
            now = self._clock()
            if now - self._purged_at >= self._purge_interval:
                self._purged_at = now
                db.execute("DELETE FROM idempotency WHERE expires_at <= %s", (now,))
            for _ in range(_CLAIM_ATTEMPTS):
                if db.execute(_CLAIM, (*key, fingerprint, owner, lease_until, now + ttl, now)).fetchone():
                    return Claimed()
                found = _read(db, key, now=now)
                if found is not None:
                    return found
            raise StoreUnavailable(f"{self.name}: the record of the key kept changing while being claimed")

        return await self._call(work)

    async def get(self, key: RecordKey) -> Held | Done | None:
        return await self._call(lambda db: _read(db, key, now=self._clock()))

    async def complete(self, key: RecordKey, owner: str, fingerprint: str, result: bytes, *, ttl: float) -> bool:
        def work(db: psycopg.Connection[Any]) -> bool:
            return db.execute(
                "UPDATE idempotency SET result = %s, expires_at = %s WHERE tenant = %s AND extension = %s "
                "AND key = %s AND owner = %s AND fingerprint = %s AND result IS NULL",
                (result, self._clock() + ttl, *key, owner, fingerprint),
            ).rowcount > 0

        return await self._call(work)

    async def release(self, key: RecordKey, owner: str) -> None:
        await self._call(lambda db: db.execute(
            "DELETE FROM idempotency WHERE tenant = %s AND extension = %s AND key = %s AND owner = %s "
            "AND result IS NULL", (*key, owner)))

    async def aclose(self) -> None:
        await trio.to_thread.run_sync(self._pool.close)


def _read(db: psycopg.Connection[Any], key: RecordKey, *, now: float) -> Held | Done | None:
    row = db.execute(
        "SELECT fingerprint, owner, lease_until, expires_at, result FROM idempotency "
        "WHERE tenant = %s AND extension = %s AND key = %s", key,
    ).fetchone()
    if row is None or row[3] <= now:
        return None
    fingerprint, owner, lease_until, _expires_at, result = row
    if result is None:
        return Held(fingerprint, owner, lease_until)
    return Done(fingerprint, bytes(result))
