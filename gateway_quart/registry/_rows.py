"""Row mapping and shared statements of the registry (both backends)."""

from __future__ import annotations

import json
from typing import Any, Final

from .._errors import RecordNotFound
from ._db import Db
from ._models import (
    ApiToken,
    HistoryEntry,
    Install,
    JournalIndexEntry,
    SealedSecrets,
    Tenant,
    UpgradeCheck,
    User,
    Version,
)

INSTALL_SELECT: Final = (
    "SELECT i.id, i.tenant_id, i.extension_id, i.enabled, i.granted_capabilities_json, i.config_json, "
    "i.secret_envelope_json, i.secret_keys_json, i.secrets_expires_at, i.created_at, i.updated_at, "
    "v.id, v.extension_id, v.version, v.content_hash, v.manifest_json, v.signature_status, v.created_at, "
    "p.id, p.extension_id, p.version, p.content_hash, p.manifest_json, p.signature_status, p.created_at, "
    "i.pending_since, i.journal_policy "
    "FROM installs i JOIN versions v ON v.id = i.version_id LEFT JOIN versions p ON p.id = i.pending_version_id"
)
TOKEN_SELECT: Final = (
    "SELECT t.id, t.user_id, t.name, t.created_at, t.expires_at, t.revoked_at, "  # noqa: S105 - SQL
    "u.id, u.tenant_id, u.email, u.name, u.user_type, u.roles_json, u.client_name, u.client_id, u.created_at "
    "FROM api_tokens t JOIN users u ON u.id = t.user_id"
)
USER_SELECT: Final = (
    "SELECT id, tenant_id, email, name, user_type, roles_json, client_name, client_id, created_at FROM users"
)
VERSION_SELECT: Final = (
    "SELECT id, extension_id, version, content_hash, manifest_json, signature_status, created_at FROM versions"
)


def get_tenant(conn: Db, tenant_id: str) -> Tenant:
    row = conn.execute("SELECT id, name, created_at FROM tenants WHERE id = ?", (tenant_id,)).fetchone()
    if row is None:
        raise RecordNotFound(f"no tenant {tenant_id!r}")
    return Tenant(*row)


def check_version_of(conn: Db, version_id: str, extension_id: str) -> None:
    row = conn.execute("SELECT extension_id FROM versions WHERE id = ?", (version_id,)).fetchone()
    if row is None or row[0] != extension_id:
        raise RecordNotFound(f"no version {version_id!r} of extension {extension_id!r}")


def get_install(conn: Db, tenant_id: str, extension_id: str) -> Install:
    row = conn.execute(
        f"{INSTALL_SELECT} WHERE i.tenant_id = ? AND i.extension_id = ?", (tenant_id, extension_id)
    ).fetchone()
    if row is None:
        raise RecordNotFound(f"extension {extension_id!r} is not installed for {tenant_id!r}")
    return row_to_install(row)


def row_to_install(row: tuple[Any, ...]) -> Install:
    envelope = row[6]
    secrets = (
        None
        if envelope is None
        else SealedSecrets(envelope=json.loads(envelope), keys=tuple(json.loads(row[7])), expires_at=row[8])
    )
    return Install(
        id=row[0],
        tenant_id=row[1],
        extension_id=row[2],
        enabled=bool(row[3]),
        granted_capabilities=tuple(json.loads(row[4])),
        config=json.loads(row[5]),
        secrets=secrets,
        created_at=row[9],
        updated_at=row[10],
        version=Version(*row[11:18]),
        pending_version=None if row[18] is None else Version(*row[18:25]),
        pending_since=row[25],
        journal_policy=row[26],
    )


def row_to_user(row: tuple[Any, ...]) -> User:
    return User(row[0], row[1], row[2], row[3], row[4], tuple(json.loads(row[5])), row[6], row[7], row[8])


def token_row(conn: Db, column: str, value: str) -> tuple[ApiToken, User] | None:
    row = conn.execute(f"{TOKEN_SELECT} WHERE {column} = ?", (value,)).fetchone()
    if row is None:
        return None
    return ApiToken(*row[:6]), row_to_user(row[6:])


HISTORY_SELECT: Final = (
    "SELECT h.id, h.tenant_id, h.extension_id, h.action, h.actor, h.reason, h.at, "
    "f.id, f.extension_id, f.version, f.content_hash, f.manifest_json, f.signature_status, f.created_at, "
    "t.id, t.extension_id, t.version, t.content_hash, t.manifest_json, t.signature_status, t.created_at "
    "FROM install_history h JOIN versions t ON t.id = h.to_version_id "
    "LEFT JOIN versions f ON f.id = h.from_version_id"
)


def row_to_history(row: tuple[Any, ...]) -> HistoryEntry:
    return HistoryEntry(
        id=int(row[0]), tenant_id=row[1], extension_id=row[2], action=row[3], actor=row[4], reason=row[5],
        at=row[6], from_version=None if row[7] is None else Version(*row[7:14]), to_version=Version(*row[14:21]),
    )


def record_history(conn: Db, *, tenant_id: str, extension_id: str, from_version_id: str | None,
                   to_version_id: str, action: str, actor: str | None, reason: str, at: str) -> None:
    conn.execute(
        "INSERT INTO install_history (tenant_id, extension_id, from_version_id, to_version_id, action, actor, "
        "reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (tenant_id, extension_id, from_version_id, to_version_id, action, actor, reason, at),
    )
JOURNAL_SELECT: Final = (
    "SELECT id, tenant_id, extension_id, install_id, content_hash, request_id, outcome, status, recorded_at, "
    "expires_at FROM journal_entries"
)
UPGRADE_CHECK_SELECT: Final = (
    "SELECT id, tenant_id, extension_id, from_hash, to_hash, passed, report_json, created_at FROM upgrade_checks"
)


def row_to_journal(row: tuple[Any, ...]) -> JournalIndexEntry:
    return JournalIndexEntry(*row)


def row_to_upgrade_check(row: tuple[Any, ...]) -> UpgradeCheck:
    return UpgradeCheck(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7])
