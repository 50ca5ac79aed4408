"""Versioned schema migrations on PostgreSQL that run once across replicas.

Every service that keeps state in PostgreSQL (the gateway's registry, the runners' extension storage and
idempotency records) migrates the same way: at start, one transaction takes a transaction-scoped advisory
lock (``pg_advisory_xact_lock(lock_key)``), creates its bookkeeping table when missing, applies each pending
migration and records it. When several replicas start at once exactly one migrates; the others wait on the
lock, then find nothing to do. DDL is transactional in PostgreSQL, so a failed migration leaves nothing
behind. Each user has its own bookkeeping ``table`` and ``lock_key``, so they may share one database.

Every pool of those services also bounds each statement (:func:`statement_timeout`, a pool's ``configure``
callback): a query or a lock wait that would hang (a row or advisory lock held by a stuck client, a server
that stopped answering mid-query) is cancelled by the server after :data:`DEFAULT_STATEMENT_TIMEOUT_S` and
surfaces as the service's own error (``registry_unavailable``, a storage error), instead of holding a worker
thread and a pooled connection, and the request behind them, for ever. The migration transaction lifts it
(``SET LOCAL``): it may wait for another replica's migration and rewrite tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

import psycopg
from psycopg import sql

from ._errors import ServiceKitError

__all__ = ["DEFAULT_STATEMENT_TIMEOUT_S", "PostgresMigration", "SchemaTooNew", "migrate_postgres", "statement_timeout"]

DEFAULT_STATEMENT_TIMEOUT_S: Final = 30.0
"""How long one statement may run, a lock wait included (as long as the gateway's default deadline of a call)."""


def statement_timeout(seconds: float) -> Callable[[psycopg.Connection[Any]], None]:
    """A psycopg pool's ``configure`` callback: each statement on its connections is cancelled by the server
    after ``seconds`` (``psycopg.errors.QueryCanceled``); ``0`` sets no limit. The connections must be in
    autocommit mode (the setting is the session's)."""
    value = f"{max(0, round(seconds * 1000))}ms"

    def configure(conn: psycopg.Connection[Any]) -> None:
        conn.execute("SELECT set_config('statement_timeout', %s, false)", (value,))

    return configure


class PostgresMigration(Protocol):
    """One numbered step: ``version`` (1, 2, ...), a ``name``, and SQL ``statements`` without parameters."""

    @property
    def version(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def statements(self) -> Sequence[str]: ...


class SchemaTooNew(ServiceKitError):
    """The database holds migrations this program does not know: a newer release migrated it."""


def migrate_postgres(
    conn: psycopg.Connection[Any], *, table: str, lock_key: int, migrations: Sequence[PostgresMigration]
) -> list[int]:
    """Apply the pending ``migrations`` in one transaction under the advisory lock; returns the versions applied.

    Args:
        conn: a connection in autocommit mode (the transaction is this function's).
        table: the bookkeeping table (``version``, ``name``, ``applied_at``), created when missing.
        lock_key: the advisory lock's bigint key, the same in every replica.
        migrations: the steps in version order; a released step is never edited, only followed by a new one.

    Raises:
        SchemaTooNew: the table records a version newer than the newest in ``migrations``.
        psycopg.Error: the database refused a statement (nothing was applied).
    """
    name = sql.Identifier(table)
    newest = max((m.version for m in migrations), default=0)
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SET LOCAL statement_timeout = 0")  # waiting for another replica, rewriting tables: no limit
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ("
                             "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)").format(name))
        done = {int(row[0]) for row in conn.execute(sql.SQL("SELECT version FROM {}").format(name))}
        unknown = sorted(v for v in done if v > newest)
        if unknown:
            raise SchemaTooNew(f"{table} records versions {unknown}, newer than this release knows; upgrade it")
        for migration in migrations:
            if migration.version in done:
                continue
            for statement in migration.statements:
                conn.execute(statement.encode())  # bytes: no parameters, a literal % stays as it is
            conn.execute(
                sql.SQL("INSERT INTO {} (version, name, applied_at) VALUES (%s, %s, %s)").format(name),
                (migration.version, migration.name, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
            )
            applied.append(migration.version)
    return applied
