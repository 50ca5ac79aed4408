"""Numbered schema migrations of the registry, one list per database.

:data:`MIGRATIONS` (SQLite) and :data:`POSTGRES_MIGRATIONS` hold the same versions with the same names; only
the column types differ (``AUTOINCREMENT`` vs. an identity column, and PostgreSQL's ``versions.seq`` that
stands in for SQLite's ``rowid`` as the registration order). Each migration runs once and is recorded in
``schema_migrations``; a migration is never edited after release, only followed by a new one.

SQLite: each step in one ``BEGIN IMMEDIATE`` transaction. PostgreSQL: every pending step in one transaction
that first takes an advisory lock (``pg_advisory_xact_lock``), so when several gateway replicas start at once
exactly one migrates and the others wait, then find the schema current. DDL is transactional in PostgreSQL:
a failed migration leaves nothing behind.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from servicekit import SchemaTooNew, migrate_postgres

from .._errors import RegistryError

if TYPE_CHECKING:
    import psycopg

MIGRATION_LOCK_KEY: Final = 0x6578_7472_6567_0001
"""The advisory lock key that serialises PostgreSQL migrations (any bigint the fleet agrees on)."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


_USAGE_TABLES: Final[tuple[str, ...]] = (
    # One row per (tenant, extension, UTC minute), added to by every flush (upsert-add): the billing
    # record. No foreign keys: usage outlives uninstalls and must never block one.
    """CREATE TABLE usage_minutes (
        tenant_id TEXT NOT NULL,
        extension_id TEXT NOT NULL,
        minute TEXT NOT NULL,
        invocations INTEGER NOT NULL DEFAULT 0,
        errors INTEGER NOT NULL DEFAULT 0,
        guest_cpu_ms REAL NOT NULL DEFAULT 0,
        memory_mb_ms REAL NOT NULL DEFAULT 0,
        egress_requests REAL NOT NULL DEFAULT 0,
        egress_bytes REAL NOT NULL DEFAULT 0,
        storage_ops REAL NOT NULL DEFAULT 0,
        storage_bytes REAL NOT NULL DEFAULT 0,
        debug_events REAL NOT NULL DEFAULT 0,
        calls_json TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (tenant_id, extension_id, minute)
    )""",
    "CREATE INDEX usage_by_tenant_minute ON usage_minutes (tenant_id, minute)",
    """CREATE TABLE tenant_budgets (
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        period TEXT NOT NULL,
        limit_value REAL NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, name, period)
    )""",
)
"""Migration 5 (usage and budgets, ``gateway_quart/_usage.py``), written for SQLite; PostgreSQL widens the types."""


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "initial",
        (
            """CREATE TABLE tenants (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                created_at TEXT NOT NULL
            )""",
            """CREATE TABLE users (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                email TEXT NOT NULL,
                name TEXT NOT NULL,
                user_type TEXT NOT NULL,
                roles_json TEXT NOT NULL,
                client_name TEXT,
                client_id TEXT,
                created_at TEXT NOT NULL,
                UNIQUE (tenant_id, email)
            )""",
            """CREATE TABLE api_tokens (
                id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                token_sha256 TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                created_at TEXT NOT NULL,
                expires_at TEXT,
                revoked_at TEXT
            )""",
            """CREATE TABLE extensions (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                publisher TEXT NOT NULL,
                created_at TEXT NOT NULL,
                UNIQUE (publisher, name)
            )""",
            """CREATE TABLE versions (
                id TEXT PRIMARY KEY,
                extension_id TEXT NOT NULL REFERENCES extensions(id) ON DELETE CASCADE,
                version TEXT NOT NULL,
                content_hash TEXT NOT NULL,
                manifest_json TEXT NOT NULL,
                signature_status TEXT NOT NULL,
                created_at TEXT NOT NULL,
                UNIQUE (extension_id, content_hash)
            )""",
            """CREATE TABLE installs (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                extension_id TEXT NOT NULL REFERENCES extensions(id),
                version_id TEXT NOT NULL REFERENCES versions(id),
                enabled INTEGER NOT NULL DEFAULT 1,
                granted_capabilities_json TEXT NOT NULL DEFAULT '[]',
                config_json TEXT NOT NULL DEFAULT '{}',
                secret_envelope_json TEXT,
                secret_keys_json TEXT NOT NULL DEFAULT '[]',
                secrets_expires_at TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                UNIQUE (tenant_id, extension_id)
            )""",
            "CREATE INDEX installs_by_hash ON installs (tenant_id, extension_id, version_id)",
            """CREATE TABLE audit_log (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                at TEXT NOT NULL,
                tenant_id TEXT NOT NULL,
                user_id TEXT,
                extension_id TEXT NOT NULL,
                method TEXT NOT NULL,
                path TEXT NOT NULL,
                status INTEGER,
                request_id TEXT NOT NULL
            )""",
            "CREATE INDEX audit_by_tenant ON audit_log (tenant_id, id)",
        ),
    ),
    Migration(
        2,
        "journal",
        (
            # Which invocations of the install the runners record (contract.parse_journal_policy's forms).
            "ALTER TABLE installs ADD COLUMN journal_policy TEXT NOT NULL DEFAULT 'errors'",
            # The index of recorded entries; the entries themselves are sealed objects in the bundle store.
            """CREATE TABLE journal_entries (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL,
                extension_id TEXT NOT NULL,
                install_id TEXT,
                content_hash TEXT NOT NULL,
                request_id TEXT,
                outcome TEXT NOT NULL,
                status INTEGER,
                recorded_at TEXT NOT NULL,
                expires_at TEXT NOT NULL
            )""",
            "CREATE INDEX journal_by_tenant ON journal_entries (tenant_id, extension_id, recorded_at)",
            "CREATE INDEX journal_by_expiry ON journal_entries (expires_at)",
            # Generic per-tenant settings (require_upgrade_check first); new settings are keys, never columns.
            """CREATE TABLE IF NOT EXISTS tenant_settings (
                tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
                settings_json TEXT NOT NULL DEFAULT '{}'
            )""",
            """CREATE TABLE upgrade_checks (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL,
                extension_id TEXT NOT NULL,
                from_hash TEXT NOT NULL,
                to_hash TEXT NOT NULL,
                passed INTEGER NOT NULL,
                report_json TEXT NOT NULL,
                created_at TEXT NOT NULL
            )""",
            "CREATE INDEX upgrade_checks_by_pair ON upgrade_checks (tenant_id, extension_id, from_hash, to_hash, "
            "created_at)",
        ),
    ),
    Migration(
        3,
        "rollout",
        (
            # Every version change of an install (gateway_quart/_rollout.py:set_install_version writes them).
            """CREATE TABLE install_history (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                extension_id TEXT NOT NULL REFERENCES extensions(id),
                from_version_id TEXT REFERENCES versions(id),
                to_version_id TEXT NOT NULL REFERENCES versions(id),
                action TEXT NOT NULL,
                actor TEXT,
                reason TEXT NOT NULL DEFAULT '',
                at TEXT NOT NULL
            )""",
            "CREATE INDEX install_history_by_install ON install_history (tenant_id, extension_id, id)",
            # An upgrade held until a tenant admin consents to what it asks for more.
            "ALTER TABLE installs ADD COLUMN pending_version_id TEXT REFERENCES versions(id)",
            "ALTER TABLE installs ADD COLUMN pending_since TEXT",
        ),
    ),
    Migration(
        4,
        "canaries",
        (
            """CREATE TABLE canaries (
                id TEXT PRIMARY KEY,
                extension_id TEXT NOT NULL REFERENCES extensions(id) ON DELETE CASCADE,
                tenant_id TEXT REFERENCES tenants(id) ON DELETE CASCADE,
                tenants_json TEXT,
                from_version_id TEXT NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
                to_version_id TEXT NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
                percent REAL NOT NULL,
                budget_json TEXT NOT NULL,
                window_s INTEGER NOT NULL,
                state TEXT NOT NULL,
                reason TEXT,
                started_at TEXT NOT NULL,
                decided_at TEXT,
                actor TEXT,
                stats_json TEXT
            )""",
            "CREATE INDEX canaries_by_state ON canaries (state, extension_id)",
        ),
    ),
    Migration(5, "usage", _USAGE_TABLES),
)


_SQLITE_ROW_ID: Final = "id INTEGER PRIMARY KEY AUTOINCREMENT"
_POSTGRES_ROW_ID: Final = "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"

POSTGRES_MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "initial",
        (
            *(statement.replace(_SQLITE_ROW_ID, _POSTGRES_ROW_ID) for statement in MIGRATIONS[0].statements),
            # SQLite orders versions by rowid; PostgreSQL has none, so registration order is a column.
            "ALTER TABLE versions ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY",
        ),
    ),
    Migration(2, "journal", next(m for m in MIGRATIONS if m.version == 2).statements),  # the same SQL on both
    *(Migration(m.version, m.name, tuple(s.replace(_SQLITE_ROW_ID, _POSTGRES_ROW_ID) for s in m.statements))
      for m in MIGRATIONS if m.version == 3),
    Migration(
        4,
        "canaries",
        tuple(statement.replace("percent REAL", "percent DOUBLE PRECISION")
              for statement in next(m for m in MIGRATIONS if m.version == 4).statements),
    ),
    Migration(
        5,
        "usage",
        tuple(statement.replace("INTEGER NOT NULL", "BIGINT NOT NULL").replace("REAL NOT NULL",
                                                                               "DOUBLE PRECISION NOT NULL")
              for statement in _USAGE_TABLES),
    ),
)


def _check_newest(applied_versions: set[int], migrations: tuple[Migration, ...]) -> None:
    newest = max(m.version for m in migrations)
    unknown = {v for v in applied_versions if v > newest}
    if unknown:
        raise RegistryError(
            f"registry schema is newer than this gateway (versions {sorted(unknown)}); upgrade the gateway"
        )


def apply_postgres_migrations(conn: psycopg.Connection[Any]) -> list[int]:
    """Bring a PostgreSQL schema up to date; returns the versions applied now (empty when current).

    Safe to run from every replica at once (``servicekit.migrate_postgres``: one transaction under an
    advisory lock).
    """
    try:
        return migrate_postgres(conn, table="schema_migrations", lock_key=MIGRATION_LOCK_KEY,
                                migrations=POSTGRES_MIGRATIONS)
    except SchemaTooNew:
        raise RegistryError("registry schema is newer than this gateway; upgrade the gateway") from None


def apply_migrations(conn: sqlite3.Connection, *, now: str) -> list[int]:
    """Bring the schema up to date; returns the versions applied now (empty when current).

    Safe to run from several processes at once: each step re-checks inside its write transaction.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    applied_versions = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    _check_newest(applied_versions, MIGRATIONS)
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.version in applied_versions:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            ).fetchone()
            if done is None:
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, now),
                )
                applied.append(migration.version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied
