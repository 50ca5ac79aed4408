"""Numbered schema migrations of the SQLite registry.

Each migration runs once, inside one ``BEGIN IMMEDIATE`` transaction that also records it in
``schema_migrations``; a migration is never edited after release, only followed by a new one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Final

from .._errors import RegistryError


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


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
)


def apply_migrations(conn: sqlite3.Connection, *, now: str) -> list[int]:
    """Bring the schema up to date; returns the versions applied now (empty when current).

    Safe to run from several processes at once: each step re-checks inside its write transaction.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    newest = max(m.version for m in MIGRATIONS)
    applied_versions = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    unknown = {v for v in applied_versions if v > newest}
    if unknown:
        raise RegistryError(
            f"registry schema is newer than this gateway (versions {sorted(unknown)}); upgrade the gateway"
        )
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
