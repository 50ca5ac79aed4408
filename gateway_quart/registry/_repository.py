"""The registry's repository code, shared by the SQLite and PostgreSQL backends.

:class:`SqlRegistry` implements every method of :class:`~gateway_quart.registry.Registry` once, in SQL that
both databases run (``?`` placeholders, ``INSERT ... ON CONFLICT``, ``RETURNING``), against the small
:class:`~gateway_quart.registry._db.Db` interface. A backend supplies ``_run`` (a connection from its pool,
the work in a worker thread, its driver's errors translated to the registry's) and the ``Db`` adapter, whose
``write()`` is a transaction that serialises read-then-write steps (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL:
a transaction-scoped advisory lock).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from .._errors import RecordConflict, RecordNotFound
from . import _rows as rows
from . import _usage as usage
from ._canaries import CanaryRepository
from ._db import Db
from ._journal import JournalRecords
from ._models import (
    UNSET,
    ApiToken,
    AuditEntry,
    Extension,
    HistoryEntry,
    Install,
    SealedSecrets,
    Tenant,
    Unset,
    User,
    Version,
)

T = TypeVar("T")


def utc_now() -> str:
    """The current time as RFC 3339 UTC with a ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


class SqlRegistry(CanaryRepository, JournalRecords):
    """The :class:`~gateway_quart.registry.Registry` methods over a ``Db``; subclasses provide ``_run``."""

    _version_order: str = "created_at"
    """The column that orders an extension's versions by registration."""

    async def _run(self, fn: Callable[[Db], T]) -> T:
        raise NotImplementedError

    async def _run_quick_write(self, fn: Callable[[Db], T]) -> T:
        """Run a short write that may be run again after it found the database busy; as :meth:`_run` unless
        the backend has a cheaper way (SQLite: see ``_sqlite.py``)."""
        return await self._run(fn)

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    # tenants and users -------------------------------------------------------------------------------
    async def create_tenant(self, tenant_id: str, name: str) -> Tenant:
        tenant = Tenant(tenant_id, name, utc_now())
        row = (tenant_id, name, tenant.created_at)
        await self._run(lambda conn: conn.execute("INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)", row))
        return tenant

    async def ensure_tenant(self, tenant_id: str, name: str) -> Tenant:
        now = utc_now()

        def work(conn: Db) -> Tenant:
            conn.execute(
                "INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (tenant_id, name, now),
            )
            return rows.get_tenant(conn, tenant_id)

        return await self._run(work)

    async def get_tenant(self, tenant_id: str) -> Tenant:
        return await self._run(lambda conn: rows.get_tenant(conn, tenant_id))

    async def create_user(
        self,
        *,
        tenant_id: str,
        email: str,
        name: str,
        user_type: str,
        roles: Sequence[str],
        client_name: str | None,
        client_id: str | None,
    ) -> User:
        user = User(new_id(), tenant_id, email, name, user_type, tuple(roles), client_name, client_id, utc_now())

        def work(conn: Db) -> User:
            rows.get_tenant(conn, tenant_id)
            conn.execute(
                "INSERT INTO users (id, tenant_id, email, name, user_type, roles_json, client_name, client_id, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (user.id, tenant_id, email, name, user_type, json.dumps(list(roles)), client_name, client_id,
                 user.created_at),
            )
            return user

        return await self._run(work)

    async def get_user(self, user_id: str) -> User:
        def work(conn: Db) -> User:
            row = conn.execute(f"{rows.USER_SELECT} WHERE id = ?", (user_id,)).fetchone()
            if row is None:
                raise RecordNotFound(f"no user {user_id!r}")
            return rows.row_to_user(row)

        return await self._run(work)

    # API tokens ---------------------------------------------------------------------------------------
    async def create_token(
        self, *, user_id: str, token_sha256: str, name: str, expires_at: str | None
    ) -> ApiToken:
        token = ApiToken(new_id(), user_id, name, utc_now(), expires_at, None)

        def work(conn: Db) -> ApiToken:
            if conn.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone() is None:
                raise RecordNotFound(f"no user {user_id!r}")
            conn.execute(
                "INSERT INTO api_tokens (id, user_id, token_sha256, name, created_at, expires_at, revoked_at) "
                "VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (token.id, user_id, token_sha256, name, token.created_at, expires_at),
            )
            return token

        return await self._run(work)

    async def find_token(self, token_sha256: str) -> tuple[ApiToken, User] | None:
        return await self._run(lambda conn: rows.token_row(conn, "t.token_sha256", token_sha256))

    async def find_token_by_id(self, token_id: str) -> tuple[ApiToken, User] | None:
        return await self._run(lambda conn: rows.token_row(conn, "t.id", token_id))

    async def revoke_token(self, token_id: str) -> ApiToken:
        now = utc_now()

        def work(conn: Db) -> ApiToken:
            conn.execute(
                "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", (now, token_id)
            )
            found = rows.token_row(conn, "t.id", token_id)
            if found is None:
                raise RecordNotFound(f"no token {token_id!r}")
            return found[0]

        return await self._run(work)

    # extensions and versions --------------------------------------------------------------------------
    async def register_version(
        self,
        *,
        extension_id: str | None,
        name: str,
        publisher: str,
        version: str,
        content_hash: str,
        manifest_json: str,
        signature_status: str,
    ) -> tuple[Extension, Version, bool]:
        now = utc_now()

        def work(conn: Db) -> tuple[Extension, Version, bool]:
            with conn.write():
                by_name = conn.execute(
                    "SELECT id, name, publisher, created_at FROM extensions WHERE publisher = ? AND name = ?",
                    (publisher, name),
                ).fetchone()
                if extension_id is not None:
                    row = conn.execute(
                        "SELECT id, name, publisher, created_at FROM extensions WHERE id = ?", (extension_id,)
                    ).fetchone()
                    if row is not None and (row[1], row[2]) != (name, publisher):
                        raise RecordConflict(
                            f"extension {extension_id!r} is {row[2]}/{row[1]}, not {publisher}/{name}"
                        )
                    if row is None and by_name is not None:
                        raise RecordConflict(f"{publisher}/{name} is already registered as {by_name[0]!r}")
                else:
                    row = by_name
                if row is None:
                    row = (extension_id or new_id(), name, publisher, now)
                    conn.execute("INSERT INTO extensions (id, name, publisher, created_at) VALUES (?, ?, ?, ?)", row)
                extension = Extension(*row)
                existing = conn.execute(
                    f"{rows.VERSION_SELECT} WHERE extension_id = ? AND content_hash = ?", (extension.id, content_hash)
                ).fetchone()
                if existing is not None:
                    return extension, Version(*existing), False
                record = Version(new_id(), extension.id, version, content_hash, manifest_json, signature_status, now)
                conn.execute(
                    "INSERT INTO versions (id, extension_id, version, content_hash, manifest_json, signature_status, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (record.id, record.extension_id, record.version, record.content_hash, record.manifest_json,
                     record.signature_status, record.created_at),
                )
                return extension, record, True

        return await self._run(work)

    async def get_extension(self, extension_id: str) -> Extension:
        def work(conn: Db) -> Extension:
            row = conn.execute(
                "SELECT id, name, publisher, created_at FROM extensions WHERE id = ?", (extension_id,)
            ).fetchone()
            if row is None:
                raise RecordNotFound(f"no extension {extension_id!r}")
            return Extension(*row)

        return await self._run(work)

    async def list_versions(self, extension_id: str, *, version: str | None = None) -> list[Version]:
        where, params = ("extension_id = ?", (extension_id,)) if version is None else (
            "extension_id = ? AND version = ?", (extension_id, version))
        return await self._run(
            lambda conn: [
                Version(*row)
                for row in conn.execute(
                    f"{rows.VERSION_SELECT} WHERE {where} ORDER BY {self._version_order}", params
                )
            ]
        )

    async def get_version(self, version_id: str) -> Version:
        def work(conn: Db) -> Version:
            row = conn.execute(f"{rows.VERSION_SELECT} WHERE id = ?", (version_id,)).fetchone()
            if row is None:
                raise RecordNotFound(f"no version {version_id!r}")
            return Version(*row)

        return await self._run(work)

    async def find_version(self, extension_id: str, content_hash: str) -> Version | None:
        def work(conn: Db) -> Version | None:
            row = conn.execute(
                f"{rows.VERSION_SELECT} WHERE extension_id = ? AND content_hash = ?", (extension_id, content_hash)
            ).fetchone()
            return None if row is None else Version(*row)

        return await self._run(work)

    # installs -----------------------------------------------------------------------------------------
    async def create_install(
        self,
        *,
        tenant_id: str,
        extension_id: str,
        version_id: str,
        granted_capabilities: Sequence[str],
        config: Mapping[str, str],
        actor: str | None = None,
    ) -> Install:
        now = utc_now()

        def work(conn: Db) -> Install:
            with conn.write():
                rows.get_tenant(conn, tenant_id)
                rows.check_version_of(conn, version_id, extension_id)
                conn.execute(
                    "INSERT INTO installs (id, tenant_id, extension_id, version_id, enabled, "
                    "granted_capabilities_json, config_json, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)",
                    (new_id(), tenant_id, extension_id, version_id, json.dumps(sorted(granted_capabilities)),
                     json.dumps(dict(config)), now, now),
                )
                rows.record_history(conn, tenant_id=tenant_id, extension_id=extension_id, from_version_id=None,
                                    to_version_id=version_id, action="install", actor=actor, reason="", at=now)
                return rows.get_install(conn, tenant_id, extension_id)

        return await self._run(work)

    async def get_install(self, tenant_id: str, extension_id: str) -> Install:
        return await self._run(lambda conn: rows.get_install(conn, tenant_id, extension_id))

    async def find_active_install(self, tenant_id: str, extension_id: str) -> Install | None:
        def work(conn: Db) -> Install | None:
            row = conn.execute(
                f"{rows.INSTALL_SELECT} WHERE i.tenant_id = ? AND i.extension_id = ? AND i.enabled = 1",
                (tenant_id, extension_id),
            ).fetchone()
            return None if row is None else rows.row_to_install(row)

        return await self._run(work)

    async def has_active_install_at(self, extension_id: str, content_hash: str) -> bool:
        def work(conn: Db) -> bool:
            row = conn.execute(
                "SELECT 1 FROM installs i JOIN versions v ON v.id = i.version_id "
                "WHERE i.extension_id = ? AND v.content_hash = ? AND i.enabled = 1 LIMIT 1",
                (extension_id, content_hash),
            ).fetchone()
            return row is not None

        return await self._run(work)

    async def list_installs(self, tenant_id: str) -> list[Install]:
        return await self._run(
            lambda conn: [
                rows.row_to_install(row)
                for row in conn.execute(
                    f"{rows.INSTALL_SELECT} WHERE i.tenant_id = ? ORDER BY i.extension_id", (tenant_id,)
                )
            ]
        )

    async def update_install(
        self,
        tenant_id: str,
        extension_id: str,
        *,
        version_id: str | Unset = UNSET,
        enabled: bool | Unset = UNSET,
        granted_capabilities: Sequence[str] | Unset = UNSET,
        config: Mapping[str, str] | Unset = UNSET,
        secrets: SealedSecrets | Unset | None = UNSET,
    ) -> Install:
        changes: dict[str, Any] = {"updated_at": utc_now()}
        if version_id is not UNSET:
            changes["version_id"] = version_id
        if enabled is not UNSET:
            changes["enabled"] = 1 if enabled else 0
        if granted_capabilities is not UNSET:
            changes["granted_capabilities_json"] = json.dumps(sorted(granted_capabilities))
        if config is not UNSET:
            changes["config_json"] = json.dumps(dict(config))
        if secrets is not UNSET:
            changes["secret_envelope_json"] = None if secrets is None else json.dumps(dict(secrets.envelope))
            changes["secret_keys_json"] = json.dumps(sorted(secrets.keys) if secrets else [])
            changes["secrets_expires_at"] = None if secrets is None else secrets.expires_at
        assignments = ", ".join(f"{column} = ?" for column in changes)

        def work(conn: Db) -> Install:
            with conn.write():
                if version_id is not UNSET:
                    rows.check_version_of(conn, version_id, extension_id)
                cursor = conn.execute(
                    f"UPDATE installs SET {assignments} WHERE tenant_id = ? AND extension_id = ?",  # noqa: S608
                    (*changes.values(), tenant_id, extension_id),
                )
                if cursor.rowcount == 0:
                    raise RecordNotFound(f"extension {extension_id!r} is not installed for {tenant_id!r}")
                return rows.get_install(conn, tenant_id, extension_id)

        return await self._run(work)

    async def change_install_version(
        self,
        tenant_id: str,
        extension_id: str,
        *,
        version_id: str,
        expected_version_id: str,
        granted_capabilities: Sequence[str],
        clear_pending: bool,
        action: str,
        actor: str | None,
        reason: str,
    ) -> Install:
        now = utc_now()

        def work(conn: Db) -> Install:
            with conn.write():
                rows.check_version_of(conn, version_id, extension_id)
                row = conn.execute(
                    "SELECT version_id FROM installs WHERE tenant_id = ? AND extension_id = ?",
                    (tenant_id, extension_id),
                ).fetchone()
                if row is None:
                    raise RecordNotFound(f"extension {extension_id!r} is not installed for {tenant_id!r}")
                if row[0] != expected_version_id:
                    raise RecordConflict(f"the install of {extension_id!r} moved to another version meanwhile")
                clear = 1 if clear_pending else 0
                conn.execute(
                    "UPDATE installs SET version_id = ?, granted_capabilities_json = ?, updated_at = ?, "
                    "pending_version_id = CASE WHEN ? = 1 THEN NULL ELSE pending_version_id END, "
                    "pending_since = CASE WHEN ? = 1 THEN NULL ELSE pending_since END "
                    "WHERE tenant_id = ? AND extension_id = ?",
                    (version_id, json.dumps(sorted(set(granted_capabilities))), now, clear, clear, tenant_id,
                     extension_id),
                )
                rows.record_history(conn, tenant_id=tenant_id, extension_id=extension_id,
                                    from_version_id=expected_version_id, to_version_id=version_id, action=action,
                                    actor=actor, reason=reason, at=now)
                return rows.get_install(conn, tenant_id, extension_id)

        return await self._run(work)

    async def set_pending_version(self, tenant_id: str, extension_id: str, version_id: str | None) -> Install:
        now = utc_now()

        def work(conn: Db) -> Install:
            with conn.write():
                if version_id is not None:
                    rows.check_version_of(conn, version_id, extension_id)
                cursor = conn.execute(
                    "UPDATE installs SET pending_version_id = ?, pending_since = ?, updated_at = ? "
                    "WHERE tenant_id = ? AND extension_id = ?",
                    (version_id, None if version_id is None else now, now, tenant_id, extension_id),
                )
                if cursor.rowcount == 0:
                    raise RecordNotFound(f"extension {extension_id!r} is not installed for {tenant_id!r}")
                return rows.get_install(conn, tenant_id, extension_id)

        return await self._run(work)

    async def list_install_history(self, tenant_id: str, extension_id: str, *, limit: int) -> list[HistoryEntry]:
        return await self._run(
            lambda conn: [
                rows.row_to_history(row)
                for row in conn.execute(
                    f"{rows.HISTORY_SELECT} WHERE h.tenant_id = ? AND h.extension_id = ? ORDER BY h.id DESC LIMIT ?",
                    (tenant_id, extension_id, limit),
                )
            ]
        )

    async def delete_install(self, tenant_id: str, extension_id: str) -> None:
        def work(conn: Db) -> None:
            cursor = conn.execute(
                "DELETE FROM installs WHERE tenant_id = ? AND extension_id = ?", (tenant_id, extension_id)
            )
            if cursor.rowcount == 0:
                raise RecordNotFound(f"extension {extension_id!r} is not installed for {tenant_id!r}")

        await self._run(work)

    # audit --------------------------------------------------------------------------------------------
    async def record_audit(
        self,
        *,
        tenant_id: str,
        user_id: str | None,
        extension_id: str,
        method: str,
        path: str,
        request_id: str,
        status: int | None = None,
        at: str | None = None,
        finished: Sequence[tuple[int, int]] = (),
    ) -> int:
        now = at or utc_now()

        def work(conn: Db) -> int:
            _finish_audits(conn, finished)  # first: a failure leaves no row behind for a call that is not made
            row = conn.execute(
                "INSERT INTO audit_log (at, tenant_id, user_id, extension_id, method, path, status, request_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (now, tenant_id, user_id, extension_id, method, path, status, request_id),
            ).fetchone()
            assert row is not None
            return int(row[0])

        # Autocommit statements: one that finds the database busy did nothing, the ones before it may run again.
        return await self._run_quick_write(work)

    async def finish_audit(self, audit_id: int, status: int) -> None:
        await self.finish_audits([(audit_id, status)])

    async def finish_audits(self, finished: Sequence[tuple[int, int]]) -> None:
        if finished:
            await self._run(lambda conn: _finish_audits(conn, finished))

    async def list_audit(self, tenant_id: str, *, limit: int) -> list[AuditEntry]:
        return await self._run(
            lambda conn: [
                AuditEntry(*row)
                for row in conn.execute(
                    "SELECT id, at, tenant_id, user_id, extension_id, method, path, status, request_id "
                    "FROM audit_log WHERE tenant_id = ? ORDER BY id DESC LIMIT ?",
                    (tenant_id, limit),
                )
            ]
        )

    # usage and budgets (migration 5, see _usage.py) ----------------------------------------------------------
    async def add_usage(self, deltas: Sequence[usage.UsageDelta]) -> None:
        if deltas:
            await self._run(lambda conn: usage.add_usage(conn, deltas))

    async def delete_usage_before(self, minute: str) -> int:
        return await self._run(lambda conn: usage.delete_usage_before(conn, minute))

    async def usage_buckets(self, tenant_id: str, *, start: str, end: str, extension_id: str | None = None,
                            granularity: str = "hour") -> list[usage.UsageBucket]:
        return await self._run(lambda conn: usage.usage_buckets(conn, tenant_id, start=start, end=end,
                                                                 extension_id=extension_id, granularity=granularity))

    async def get_budgets(self, tenant_id: str) -> list[usage.Budget]:
        return await self._run(lambda conn: usage.get_budgets(conn, tenant_id))

    async def set_budgets(self, tenant_id: str, budgets: Sequence[usage.Budget]) -> list[usage.Budget]:
        now = utc_now()

        def work(conn: Db) -> list[usage.Budget]:
            usage.set_budgets(conn, tenant_id, budgets, now=now)
            return usage.get_budgets(conn, tenant_id)

        return await self._run(work)


def _finish_audits(conn: Db, finished: Sequence[tuple[int, int]]) -> None:
    # One statement each, not a transaction: setting a status is idempotent, and on PostgreSQL a write step
    # would take the registry's write lock for rows no other writer touches.
    for audit_id, status in finished:
        conn.execute("UPDATE audit_log SET status = ? WHERE id = ?", (status, audit_id))
