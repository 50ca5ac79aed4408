"""A registry wrapper that remembers the hot-path lookups (token -> user, active install) for a few seconds.

Every proxied call resolves its bearer token and the tenant's install; with the lookups served from memory the
registry sees one write per call (the audit row) instead of three round trips. Writes made through this wrapper
(revoking a token; creating, upgrading, disabling, reconfiguring or uninstalling an install) drop the affected
entries at once, so the admin API's changes apply immediately in this process.

Without ``revocations``, another gateway process sharing the database keeps serving what it cached for up to
the TTL. With them (the fleet's Redis, ``GATEWAY_REDIS_URL``), every such write also advances a shared
revocation generation, and every cached lookup first reads it: when it moved, this process drops its cache
before answering, so a revoked token or a removed install is refused by every gateway on its next request.
When the generation cannot be read, lookups go to the registry (never to a possibly stale cache).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, Final, Generic, Protocol, TypeVar, final

from cachetools import TTLCache

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
from ._protocol import Registry
from ._usage import Budget, UsageBucket, UsageDelta

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

log = logging.getLogger("gateway_quart")

DEFAULT_CACHE_TTL_S: Final = 2.0
DEFAULT_CACHE_MAX_ENTRIES: Final = 4096


@final
class _TtlCache(Generic[K, V]):
    """A bounded LRU map (cachetools' ``TTLCache``) whose entries expire ``ttl_s`` after they were stored.

    Misses (``None``) are not kept, and neither is a value loaded while a write invalidated the cache.
    """

    def __init__(self, *, ttl_s: float, max_entries: int) -> None:
        self._entries: TTLCache[K, V] = TTLCache(maxsize=max_entries, ttl=ttl_s, timer=time.monotonic)
        self._generation = 0

    async def get(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        cached = self._entries.get(key)
        if cached is not None:
            return cached
        generation = self._generation
        value = await load()
        # A write that invalidated while the load ran may have made ``value`` stale: serve it, don't keep it.
        if value is not None and generation == self._generation:
            with contextlib.suppress(ValueError):  # max_entries=0: nothing is kept
                self._entries[key] = value
        else:
            self._entries.pop(key, None)
        return value

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

    def drop(self, key: K) -> None:
        self._generation += 1
        self._entries.pop(key, None)


class Revocations(Protocol):
    """A revocation generation shared by the processes that cache the registry (``gateway_quart``'s Redis)."""

    async def revocations(self) -> int:
        """The current generation; raises when it cannot be read."""
        ...

    async def revoked(self) -> int:
        """Advance the generation after a revocation; returns the new one."""
        ...


@final
class CachedRegistry:
    """:class:`Registry` over another one, with ``find_token``, ``find_token_by_id`` and ``find_active_install``
    answered from a short-lived in-memory cache (see the module docstring for what a TTL means across processes).

    Args:
        inner: the registry that holds the data.
        ttl_s: how long a looked-up record is reused; must be positive.
        max_entries: entries kept per kind of lookup (least recently used go first).
        revocations: the fleet's revocation generation (see the module docstring); None: this process only.
    """

    def __init__(
        self,
        inner: Registry,
        *,
        ttl_s: float = DEFAULT_CACHE_TTL_S,
        max_entries: int = DEFAULT_CACHE_MAX_ENTRIES,
        revocations: Revocations | None = None,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self.inner = inner
        self._revocations = revocations
        self._generation: int | None = None
        self._unreadable = False  # logged once per outage, not once per request
        self._tokens: _TtlCache[tuple[str, str], tuple[ApiToken, User]] = _TtlCache(
            ttl_s=ttl_s, max_entries=max_entries)
        self._installs: _TtlCache[tuple[str, str], Install] = _TtlCache(ttl_s=ttl_s, max_entries=max_entries)

    async def ping(self) -> None:
        await self.inner.ping()

    async def aclose(self) -> None:
        self._tokens.clear()
        self._installs.clear()
        await self.inner.aclose()

    # tenants and users
    async def create_tenant(self, tenant_id: str, name: str) -> Tenant:
        return await self.inner.create_tenant(tenant_id, name)

    async def ensure_tenant(self, tenant_id: str, name: str) -> Tenant:
        return await self.inner.ensure_tenant(tenant_id, name)

    async def get_tenant(self, tenant_id: str) -> Tenant:
        return await self.inner.get_tenant(tenant_id)

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
        return await self.inner.create_user(tenant_id=tenant_id, email=email, name=name, user_type=user_type,
                                            roles=roles, client_name=client_name, client_id=client_id)

    async def get_user(self, user_id: str) -> User:
        return await self.inner.get_user(user_id)

    # API tokens (callers check revocation and expiry on every use, cached or not)
    async def create_token(
        self, *, user_id: str, token_sha256: str, name: str, expires_at: str | None
    ) -> ApiToken:
        return await self.inner.create_token(user_id=user_id, token_sha256=token_sha256, name=name,
                                             expires_at=expires_at)

    async def find_token(self, token_sha256: str) -> tuple[ApiToken, User] | None:
        if not await self._current():
            return await self.inner.find_token(token_sha256)
        return await self._tokens.get(("sha256", token_sha256), lambda: self.inner.find_token(token_sha256))

    async def find_token_by_id(self, token_id: str) -> tuple[ApiToken, User] | None:
        if not await self._current():
            return await self.inner.find_token_by_id(token_id)
        return await self._tokens.get(("id", token_id), lambda: self.inner.find_token_by_id(token_id))

    async def revoke_token(self, token_id: str) -> ApiToken:
        # A token is cached under its hash and its id; revocations are rare, so forget them all.
        self._tokens.clear()
        try:
            return await self.inner.revoke_token(token_id)
        finally:
            self._tokens.clear()
            await self._announce()

    async def _current(self) -> bool:
        """Whether the cache may answer: drops it when the fleet's generation moved; False when unknown."""
        if self._revocations is None:
            return True
        try:
            generation = await self._revocations.revocations()
        except Exception as exc:  # whatever failed, the registry answers instead of the cache
            if not self._unreadable:
                log.warning("revocation generation unreadable, auth cache bypassed until it is back: %s", exc)
            self._unreadable = True
            self._tokens.clear()
            self._installs.clear()
            return False
        if self._unreadable:
            log.warning("revocation generation readable again, auth cache in use")
            self._unreadable = False
        if generation != self._generation:
            self._tokens.clear()
            self._installs.clear()
            self._generation = generation
        return True

    async def _announce(self) -> None:
        if self._revocations is None:
            return
        try:
            # Not remembered as seen: another gateway's revocation may lie between, the next lookup clears.
            await self._revocations.revoked()
        except Exception as exc:  # the write is done; other gateways see it within their TTL
            log.error("revocation not announced to the other gateways (they apply it within the cache TTL): %s",
                      exc)

    # extensions and versions (versions never change once registered)
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
        return await self.inner.register_version(
            extension_id=extension_id, name=name, publisher=publisher, version=version, content_hash=content_hash,
            manifest_json=manifest_json, signature_status=signature_status,
        )

    async def get_extension(self, extension_id: str) -> Extension:
        return await self.inner.get_extension(extension_id)

    async def list_versions(self, extension_id: str, *, version: str | None = None) -> list[Version]:
        return await self.inner.list_versions(extension_id, version=version)

    async def get_version(self, version_id: str) -> Version:
        return await self.inner.get_version(version_id)

    async def find_version(self, extension_id: str, content_hash: str) -> Version | None:
        return await self.inner.find_version(extension_id, content_hash)

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
        async def write() -> Install:
            return await self.inner.create_install(tenant_id=tenant_id, extension_id=extension_id,
                                                   version_id=version_id,
                                                   granted_capabilities=granted_capabilities, config=config,
                                                   actor=actor)

        return await self._install_write(tenant_id, extension_id, write)

    async def get_install(self, tenant_id: str, extension_id: str) -> Install:
        return await self.inner.get_install(tenant_id, extension_id)

    async def find_active_install(self, tenant_id: str, extension_id: str) -> Install | None:
        if not await self._current():
            return await self.inner.find_active_install(tenant_id, extension_id)
        return await self._installs.get((tenant_id, extension_id),
                                        lambda: self.inner.find_active_install(tenant_id, extension_id))

    async def has_active_install_at(self, extension_id: str, content_hash: str) -> bool:
        return await self.inner.has_active_install_at(extension_id, content_hash)

    async def list_installs(self, tenant_id: str) -> list[Install]:
        return await self.inner.list_installs(tenant_id)

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
        async def write() -> Install:
            return await self.inner.update_install(tenant_id, extension_id, version_id=version_id, enabled=enabled,
                                                   granted_capabilities=granted_capabilities, config=config,
                                                   secrets=secrets)

        return await self._install_write(tenant_id, extension_id, write)

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
        async def write() -> Install:
            return await self.inner.change_install_version(
                tenant_id, extension_id, version_id=version_id, expected_version_id=expected_version_id,
                granted_capabilities=granted_capabilities, clear_pending=clear_pending, action=action, actor=actor,
                reason=reason)

        return await self._install_write(tenant_id, extension_id, write)

    async def set_pending_version(self, tenant_id: str, extension_id: str, version_id: str | None) -> Install:
        async def write() -> Install:
            return await self.inner.set_pending_version(tenant_id, extension_id, version_id)

        return await self._install_write(tenant_id, extension_id, write)

    async def list_install_history(self, tenant_id: str, extension_id: str, *, limit: int) -> list[HistoryEntry]:
        return await self.inner.list_install_history(tenant_id, extension_id, limit=limit)

    async def delete_install(self, tenant_id: str, extension_id: str) -> None:
        async def write() -> None:
            await self.inner.delete_install(tenant_id, extension_id)

        await self._install_write(tenant_id, extension_id, write)

    async def _install_write(self, tenant_id: str, extension_id: str, write: Callable[[], Awaitable[V]]) -> V:
        # Dropped before (no reader keeps a value loaded before the write) and after (none loaded during it).
        key = (tenant_id, extension_id)
        self._installs.drop(key)
        try:
            return await write()
        finally:
            self._installs.drop(key)
            await self._announce()

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
        return await self.inner.record_audit(tenant_id=tenant_id, user_id=user_id, extension_id=extension_id,
                                              method=method, path=path, request_id=request_id, status=status, at=at,
                                              finished=finished)

    async def finish_audit(self, audit_id: int, status: int) -> None:
        await self.inner.finish_audit(audit_id, status)

    async def finish_audits(self, finished: Sequence[tuple[int, int]]) -> None:
        await self.inner.finish_audits(finished)

    async def list_audit(self, tenant_id: str, *, limit: int) -> list[AuditEntry]:
        return await self.inner.list_audit(tenant_id, limit=limit)

    # journal (the policy is part of the cached install: set it as an install write)
    async def set_journal_policy(self, tenant_id: str, extension_id: str, policy: str) -> Install:
        async def write() -> Install:
            return await self.inner.set_journal_policy(tenant_id, extension_id, policy)

        return await self._install_write(tenant_id, extension_id, write)

    async def record_journal_entries(self, entries: Sequence[JournalIndexEntry]) -> int:
        return await self.inner.record_journal_entries(entries)

    async def list_journal_entries(
        self,
        tenant_id: str,
        *,
        extension_id: str | None = None,
        outcome: str | None = None,
        content_hash: str | None = None,
        limit: int,
    ) -> list[JournalIndexEntry]:
        return await self.inner.list_journal_entries(tenant_id, extension_id=extension_id, outcome=outcome,
                                                     content_hash=content_hash, limit=limit)

    async def get_journal_entry(self, tenant_id: str, entry_id: str) -> JournalIndexEntry:
        return await self.inner.get_journal_entry(tenant_id, entry_id)

    async def list_expired_journal_entries(self, now: str, *, limit: int) -> list[JournalIndexEntry]:
        return await self.inner.list_expired_journal_entries(now, limit=limit)

    async def delete_journal_entries(self, entry_ids: Sequence[str]) -> int:
        return await self.inner.delete_journal_entries(entry_ids)

    async def get_tenant_settings(self, tenant_id: str) -> dict[str, Any]:
        return await self.inner.get_tenant_settings(tenant_id)

    async def update_tenant_settings(self, tenant_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        return await self.inner.update_tenant_settings(tenant_id, changes)

    async def record_upgrade_check(self, check: UpgradeCheck) -> UpgradeCheck:
        return await self.inner.record_upgrade_check(check)

    async def find_upgrade_check(
        self, tenant_id: str, extension_id: str, from_hash: str, to_hash: str, *, since: str
    ) -> UpgradeCheck | None:
        return await self.inner.find_upgrade_check(tenant_id, extension_id, from_hash, to_hash, since=since)

    # canaries (the gateway's canary router keeps its own copy of the running ones)
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
        return await self.inner.create_canary(
            canary_id=canary_id, extension_id=extension_id, tenant_id=tenant_id, tenants=tenants,
            from_version_id=from_version_id, to_version_id=to_version_id, percent=percent, budget=budget,
            window_s=window_s, started_at=started_at, actor=actor,
        )

    async def get_canary(self, canary_id: str) -> Canary:
        return await self.inner.get_canary(canary_id)

    async def list_running_canaries(self) -> list[Canary]:
        return await self.inner.list_running_canaries()

    async def list_canaries(self, extension_id: str, *, state: str | None = None,
                            tenant_id: str | None = None, limit: int) -> list[Canary]:
        return await self.inner.list_canaries(extension_id, state=state, tenant_id=tenant_id, limit=limit)

    async def finish_canary(
        self, canary_id: str, *, state: str, reason: str, decided_at: str, stats: Mapping[str, Any] | None
    ) -> Canary | None:
        return await self.inner.finish_canary(canary_id, state=state, reason=reason, decided_at=decided_at,
                                              stats=stats)

    # usage and budgets (the gateway caches budgets itself, see _budgets.py)
    async def add_usage(self, deltas: Sequence[UsageDelta]) -> None:
        await self.inner.add_usage(deltas)

    async def delete_usage_before(self, minute: str) -> int:
        return await self.inner.delete_usage_before(minute)

    async def usage_buckets(self, tenant_id: str, *, start: str, end: str, extension_id: str | None = None,
                            granularity: str = "hour") -> list[UsageBucket]:
        return await self.inner.usage_buckets(tenant_id, start=start, end=end, extension_id=extension_id,
                                              granularity=granularity)

    async def get_budgets(self, tenant_id: str) -> list[Budget]:
        return await self.inner.get_budgets(tenant_id)

    async def set_budgets(self, tenant_id: str, budgets: Sequence[Budget]) -> list[Budget]:
        return await self.inner.set_budgets(tenant_id, budgets)
