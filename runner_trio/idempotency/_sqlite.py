"""Records in a SQLite file: shared by every runner process on one machine, and surviving their restarts.

One connection per store, used from worker threads under a lock (a claim is two statements; WAL lets other
processes read meanwhile). A claim is ``INSERT ... ON CONFLICT DO NOTHING`` inside ``BEGIN IMMEDIATE``, after
deleting the key's expired record: SQLite's write lock makes it atomic across processes. ``synchronous=NORMAL``
with WAL keeps every committed claim and result through a crash of the process (SIGKILL), not through a power
loss. Expired records are deleted at most once per ``purge_interval``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar, final

import trio

from ._errors import StoreUnavailable
from ._records import Claimed, Done, Held, RecordKey

__all__ = ["DEFAULT_BUSY_TIMEOUT", "DEFAULT_PURGE_INTERVAL", "SqliteRecords"]

DEFAULT_BUSY_TIMEOUT: Final = 5.0
"""Seconds a write waits for another process's write lock before the store counts as unavailable."""
DEFAULT_PURGE_INTERVAL: Final = 60.0

T = TypeVar("T")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS idempotency (
    tenant TEXT NOT NULL,
    extension TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    owner TEXT NOT NULL,
    lease_until REAL NOT NULL,
    expires_at REAL NOT NULL,
    result BLOB,
    PRIMARY KEY (tenant, extension, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at);
"""


@final
class SqliteRecords:
    """Idempotency records in the SQLite file ``path`` (created with its directory on first use)."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        purge_interval: float = DEFAULT_PURGE_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._purge_interval = purge_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._purged_at = 0.0

    @property
    def name(self) -> str:
        return f"sqlite://{self.path.resolve()}"

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    async def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return work(self._connect())

        try:
            return await trio.to_thread.run_sync(locked)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"{self.name}: {exc}") from exc

    async def claim(
        self, key: RecordKey, fingerprint: str, owner: str, *, lease_until: float, ttl: float
    ) -> Claimed | Held | Done:
        def work(db: sqlite3.Connection) -> Claimed | Held | Done:
            now = self._clock()
            db.execute("BEGIN IMMEDIATE")
            try:
                if now - self._purged_at >= self._purge_interval:
                    db.execute("DELETE FROM idempotency WHERE expires_at <= ?", (now,))
                    self._purged_at = now
                else:
                    db.execute("DELETE FROM idempotency WHERE tenant = ? AND extension = ? AND key = ? "
                               "AND expires_at <= ?", (*key, now))
                inserted = db.execute(
                    "INSERT INTO idempotency (tenant, extension, key, fingerprint, owner, lease_until, expires_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (*key, fingerprint, owner, lease_until, now + ttl),
                ).rowcount
                found = None if inserted else _read(db, key)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return Claimed() if found is None else found

        return await self._call(work)

    async def get(self, key: RecordKey) -> Held | Done | None:
        return await self._call(lambda db: _read(db, key, now=self._clock()))

    async def complete(self, key: RecordKey, owner: str, fingerprint: str, result: bytes, *, ttl: float) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            updated = db.execute(
                "UPDATE idempotency SET result = ?, expires_at = ? "
                "WHERE tenant = ? AND extension = ? AND key = ? AND owner = ? AND fingerprint = ? AND result IS NULL",
                (result, self._clock() + ttl, *key, owner, fingerprint),
            ).rowcount
            return bool(updated)

        return await self._call(work)

    async def release(self, key: RecordKey, owner: str) -> None:
        await self._call(lambda db: db.execute(
            "DELETE FROM idempotency WHERE tenant = ? AND extension = ? AND key = ? AND owner = ? "
            "AND result IS NULL", (*key, owner)))

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                db, self._db = self._db, None
                if db is not None:
                    db.close()

        await trio.to_thread.run_sync(close)


def _read(db: sqlite3.Connection, key: RecordKey, *, now: float | None = None) -> Held | Done | None:
    row = db.execute(
        "SELECT fingerprint, owner, lease_until, expires_at, result FROM idempotency "
        "WHERE tenant = ? AND extension = ? AND key = ?", key,
    ).fetchone()
    if row is None or (now is not None and row[3] <= now):
        return None
    fingerprint, owner, lease_until, _expires_at, result = row
    if result is None:
        return Held(fingerprint, owner, lease_until)
    return Done(fingerprint, bytes(result))
