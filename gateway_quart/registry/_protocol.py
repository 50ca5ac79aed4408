"""The registry's repository interface: what the gateway needs, independent of the database.

:class:`~gateway_quart.registry.SqliteRegistry` implements it for one machine and
:class:`~gateway_quart.registry.PostgresRegistry` for a fleet, both through the same repository code
(``_repository.py``) and the same tests (``tests/gateway/test_registry.py`` runs on both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ._canaries import Canary, CanaryBudget
from ._models import (
    UNSET,
    ApiToken,
    AuditEntry,
    Extension,
    HistoryEntry,
    Install,
    JournalIndexEntry,
    SealedSecrets,
    Tenant,
    Unset,
    UpgradeCheck,
    User,
    Version,
)
from ._usage import Budget, UsageBucket, UsageDelta


class Registry(Protocol):
    """Tenants, users, tokens, extensions, versions, installs and the audit log.

    Lookups that name one record raise ``RecordNotFound`` when it is missing; creating a record that exists
    raises ``RecordConflict``. ``find_*`` methods return ``None`` instead.
    """

    async def ping(self) -> None:
        """Raise ``RegistryError`` unless the database answers."""

    async def aclose(self) -> None:
        """Release connections; later calls fail."""

    # tenants and users
    async def create_tenant(self, tenant_id: str, name: str) -> Tenant: ...

    async def ensure_tenant(self, tenant_id: str, name: str) -> Tenant:
        """Return the tenant, creating it when missing."""

    async def get_tenant(self, tenant_id: str) -> Tenant: ...

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
    ) -> User: ...

    async def get_user(self, user_id: str) -> User: ...

    # API tokens
    async def create_token(
        self, *, user_id: str, token_sha256: str, name: str, expires_at: str | None
    ) -> ApiToken: ...

    async def find_token(self, token_sha256: str) -> tuple[ApiToken, User] | None:
        """The token with that hash and its user, revoked or expired ones included (callers check)."""

    async def find_token_by_id(self, token_id: str) -> tuple[ApiToken, User] | None: ...

    async def revoke_token(self, token_id: str) -> ApiToken: ...

    # extensions and versions
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
        """Record a published bundle; returns (extension, version, created). Idempotent per content hash."""

    async def get_extension(self, extension_id: str) -> Extension: ...

    async def list_versions(self, extension_id: str, *, version: str | None = None) -> list[Version]:
        """Versions in registration order, oldest first (the last one is what a plain install picks); only those
        registered under the version string ``version`` (several bundles may carry one) when given."""

    async def get_version(self, version_id: str) -> Version: ...

    async def find_version(self, extension_id: str, content_hash: str) -> Version | None: ...

    # installs
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
        """Create the install and its first ``install_history`` row (``actor``: the user id, None for the admin
        token)."""

    async def get_install(self, tenant_id: str, extension_id: str) -> Install: ...

    async def find_active_install(self, tenant_id: str, extension_id: str) -> Install | None:
        """The enabled install of ``extension_id`` for ``tenant_id``, or ``None``."""

    async def has_active_install_at(self, extension_id: str, content_hash: str) -> bool:
        """Whether any tenant has an enabled install of ``extension_id`` at ``content_hash`` (bare hex)."""

    async def list_installs(self, tenant_id: str) -> list[Install]: ...

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
        """Change the given fields (``UNSET`` leaves one as it is); returns the updated install.

        ``version_id`` here writes no history: the gateway changes versions only through
        ``gateway_quart._rollout.set_install_version`` (:meth:`change_install_version`).
        """

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
        """Move the install to ``version_id`` with these grants and record the change in ``install_history``, in
        one transaction. Only ``gateway_quart._rollout.set_install_version`` calls it.

        Raises:
            RecordNotFound: no such install, or the version is not one of the extension's.
            RecordConflict: the install is no longer at ``expected_version_id`` (a concurrent change won).
        """

    async def set_pending_version(self, tenant_id: str, extension_id: str, version_id: str | None) -> Install:
        """Hold ``version_id`` as the upgrade waiting for consent (replacing any), or clear it (``None``)."""

    async def list_install_history(self, tenant_id: str, extension_id: str, *, limit: int) -> list[HistoryEntry]:
        """The install's version changes, newest first (rows outlive an uninstall)."""

    async def delete_install(self, tenant_id: str, extension_id: str) -> None: ...

    # audit
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
        """Write an audit row; returns its id.

        ``at`` is the time the call started (RFC 3339 UTC; now when ``None``). A row written with
        ``status=None`` (still open) is completed by :meth:`finish_audit`, or by ``finished``: final statuses
        of earlier rows, ``(audit_id, status)``, set by the same call before the row is written (the gateway's
        audit writer lets them ride along with the next row instead of paying a write of their own).
        """

    async def finish_audit(self, audit_id: int, status: int) -> None: ...

    async def finish_audits(self, finished: Sequence[tuple[int, int]]) -> None:
        """Set the final status of each ``(audit_id, status)``."""

    async def list_audit(self, tenant_id: str, *, limit: int) -> list[AuditEntry]: ...

    # journal (migration 2)
    async def set_journal_policy(self, tenant_id: str, extension_id: str, policy: str) -> Install:
        """Set the install's journal policy (already validated); ``RecordNotFound`` when not installed."""

    async def record_journal_entries(self, entries: Sequence[JournalIndexEntry]) -> int:
        """Index journal entries; an id already indexed is skipped. Returns the rows written."""

    async def list_journal_entries(
        self,
        tenant_id: str,
        *,
        extension_id: str | None = None,
        outcome: str | None = None,
        content_hash: str | None = None,
        limit: int,
    ) -> list[JournalIndexEntry]:
        """The tenant's indexed entries, newest first, filtered by the given fields."""

    async def get_journal_entry(self, tenant_id: str, entry_id: str) -> JournalIndexEntry:
        """One of the tenant's entries; another tenant's raises ``RecordNotFound`` like a missing one."""

    async def list_expired_journal_entries(self, now: str, *, limit: int) -> list[JournalIndexEntry]:
        """Entries whose ``expires_at`` is at or before ``now``, oldest expiry first."""

    async def delete_journal_entries(self, entry_ids: Sequence[str]) -> int:
        """Drop index rows; returns how many there were."""

    async def get_tenant_settings(self, tenant_id: str) -> dict[str, Any]:
        """The tenant's settings object (``{}`` when none was set); ``RecordNotFound`` for no tenant."""

    async def update_tenant_settings(self, tenant_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into the tenant's settings (keys replaced, others kept); returns the result."""

    async def record_upgrade_check(self, check: UpgradeCheck) -> UpgradeCheck: ...

    async def find_upgrade_check(
        self, tenant_id: str, extension_id: str, from_hash: str, to_hash: str, *, since: str
    ) -> UpgradeCheck | None:
        """The newest check of (from_hash -> to_hash) created at or after ``since``, passed or not."""

    # canaries (migration 4)
    async def create_canary(
        self,
        *,
        canary_id: str,
        extension_id: str,
        tenant_id: str | None,
        tenants: Sequence[str] | None,
        from_version_id: str,
        to_version_id: str,
        percent: float,
        budget: CanaryBudget,
        window_s: int,
        started_at: str,
        actor: str | None,
    ) -> Canary:
        """Record a running canary; ``RecordConflict`` when a running one concerns one of its tenants."""

    async def get_canary(self, canary_id: str) -> Canary: ...

    async def list_running_canaries(self) -> list[Canary]: ...

    async def list_canaries(self, extension_id: str, *, state: str | None = None,
                            tenant_id: str | None = None, limit: int) -> list[Canary]: ...

    async def finish_canary(
        self, canary_id: str, *, state: str, reason: str, decided_at: str, stats: Mapping[str, Any] | None
    ) -> Canary | None:
        """End a running canary; ``None`` when it had already ended."""

    # usage and budgets
    async def add_usage(self, deltas: Sequence[UsageDelta]) -> None:
        """Add each delta to its (tenant, extension, minute) row, in one transaction."""

    async def delete_usage_before(self, minute: str) -> int:
        """Delete the usage rows of every minute before ``minute`` (RFC 3339); returns how many went."""

    async def usage_buckets(self, tenant_id: str, *, start: str, end: str, extension_id: str | None = None,
                            granularity: str = "hour") -> list[UsageBucket]:
        """Sums per (bucket, extension) of the minutes in ``[start, end)`` (RFC 3339 minutes), oldest first."""

    async def get_budgets(self, tenant_id: str) -> list[Budget]: ...

    async def set_budgets(self, tenant_id: str, budgets: Sequence[Budget]) -> list[Budget]:
        """Replace the tenant's budgets; returns them as stored. Raises ``RecordNotFound`` for no tenant."""
