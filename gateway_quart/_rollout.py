"""Versions, rollback and consent: how an install moves from one registered version to another.

:func:`set_install_version` is THE one place an existing install changes version: the upgrade and consent
endpoints, rollback, and the canary's promotion and automatic rollback all call it. It writes the change and an
``install_history`` row in one transaction (:meth:`Registry.change_install_version`) through the cached
registry, so this process's caches drop the install at once and, with ``GATEWAY_REDIS_URL``, every other
gateway drops it on its next request (the fleet's revocation generation).

Consent: :func:`capability_diff` compares what two manifests ask for — capabilities, egress hosts
(``egress``) and secrets (``secrets``); a component's WIT imports need no separate line, since every host
interface the runner links is enabled by one capability, so a new import that reaches the host shows up as a
new capability. An upgrade whose diff asks for nothing new proceeds (:func:`upgrade` answers ``upgraded``);
one that asks for more is held as the install's pending version, the install keeps serving the old one, until
a tenant admin approves it (:func:`consent`), which also grants the capabilities the diff added. A newer
upgrade replaces a pending one; a rollback clears it.

Rollback (:func:`rollback`) walks the install's history back: the version the install ran before its latest
forward change, skipping changes that earlier rollbacks undid, so repeated rollbacks keep going back
(v1 -> v2 -> v3, rollback -> v2, rollback -> v1) until the install row, where there is nothing left to undo.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import bundles

from ._errors import Conflict, NotFound, RecordConflict, RecordNotFound
from ._journal_gate import ensure_upgrade_allowed
from ._state import GatewayState, check_signature
from .registry import HISTORY_ACTIONS, HistoryEntry, Install, Version

ROLLBACK_ACTIONS: Final = frozenset({"rollback", "canary_rollback"})
"""History rows that undo the forward change before them (what :func:`previous_version` skips)."""
CONSENT_CHECKED_ACTIONS: Final = frozenset({"upgrade", "canary_promote"})
"""Moves that must not add anything the tenant admin has not approved (``consent`` is the approval itself)."""
CLEARS_PENDING_ACTIONS: Final = frozenset({"upgrade", "rollback", "consent"})
"""Moves after which a held upgrade no longer stands (the admin asks again; a canary leaves it alone)."""
GATED_ACTIONS: Final = frozenset({"upgrade", "consent", "canary_promote"})
"""Forward moves, which a tenant's upgrade-check requirement applies to; a rollback returns to what ran before
and is never held back by it."""
MAX_HISTORY_WALK: Final = 1000
"""History rows a rollback reads to find the previous version (an install changing version more often than
this between rollbacks has nothing sensible to roll back to anyway)."""


@dataclass(frozen=True)
class CapabilityDiff:
    """What a new manifest asks for that an old one did not, and what it no longer asks for."""

    added_capabilities: tuple[str, ...] = ()
    removed_capabilities: tuple[str, ...] = ()
    added_egress: tuple[str, ...] = ()
    removed_egress: tuple[str, ...] = ()
    added_secrets: tuple[str, ...] = ()
    removed_secrets: tuple[str, ...] = ()

    @property
    def requires_consent(self) -> bool:
        """Whether the new version asks for more: a capability (beyond the always-granted ones), an egress host
        or a secret."""
        new_caps = [cap for cap in self.added_capabilities if cap not in bundles.ALWAYS_GRANTED]
        return bool(new_caps or self.added_egress or self.added_secrets)

    def to_json(self) -> dict[str, Any]:
        return {
            "requires_consent": self.requires_consent,
            "capabilities": {"added": list(self.added_capabilities), "removed": list(self.removed_capabilities)},
            "egress": {"added": list(self.added_egress), "removed": list(self.removed_egress)},
            "secrets": {"added": list(self.added_secrets), "removed": list(self.removed_secrets)},
        }


def _delta(old: Iterable[str], new: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    before, after = set(old), set(new)
    return tuple(sorted(after - before)), tuple(sorted(before - after))


def capability_diff(old: bundles.Manifest, new: bundles.Manifest) -> CapabilityDiff:
    """Compare what ``new`` asks for with ``old``: capabilities (``capabilities``), egress hosts (``egress``) and
    secret names (``secrets``); a key a manifest leaves out asks for nothing."""
    caps = _delta(old.capabilities, new.capabilities)
    egress = _delta(old.egress or (), new.egress or ())
    secrets = _delta(old.secrets or (), new.secrets or ())
    return CapabilityDiff(caps[0], caps[1], egress[0], egress[1], secrets[0], secrets[1])


def version_ref(version: Version | None) -> dict[str, str] | None:
    """A version as the rollout answers name it."""
    if version is None:
        return None
    return {"version_id": version.id, "version": version.version, "content_hash": f"sha256:{version.content_hash}"}


def history_view(entry: HistoryEntry) -> dict[str, Any]:
    return {"id": entry.id, "action": entry.action, "from": version_ref(entry.from_version),
            "to": version_ref(entry.to_version), "actor": entry.actor, "reason": entry.reason, "at": entry.at}


async def resolve_version(st: GatewayState, extension_id: str, ref: Version | str) -> Version:
    """The registered version of ``extension_id`` that ``ref`` names: a record, ``sha256:<hex>``, a version
    string (the newest bundle registered under it) or a version id.

    Raises:
        NotFound: ``version_not_found``.
    """
    if isinstance(ref, Version):
        if ref.extension_id != extension_id:
            raise NotFound("version_not_found", "no such version of this extension")
        return ref
    if ref.startswith("sha256:"):
        try:
            hex_hash = bundles.parse_content_hash(ref)
        except ValueError:
            raise NotFound("version_not_found", "no such version of this extension") from None
        found = await st.registry.find_version(extension_id, hex_hash)
        if found is None:
            raise NotFound("version_not_found", "that content hash is not registered for this extension")
        return found
    named = await st.registry.list_versions(extension_id, version=ref)
    if named:
        return named[-1]
    try:
        version = await st.registry.get_version(ref)
    except RecordNotFound:
        raise NotFound("version_not_found", "no such version of this extension") from None
    if version.extension_id != extension_id:
        raise NotFound("version_not_found", "no such version of this extension")
    return version


async def _current(st: GatewayState, tenant_id: str, extension_id: str) -> Install:
    try:
        return await st.registry.get_install(tenant_id, extension_id)
    except RecordNotFound:
        raise NotFound("not_installed", "the extension is not installed for this tenant") from None


async def set_install_version(
    st: GatewayState,
    tenant_id: str,
    extension_id: str,
    version: Version | str,
    *,
    actor: str | None,
    action: str,
    reason: str,
    grant: Sequence[str] = (),
) -> Install:
    """Move the install to ``version`` (a record or what :func:`resolve_version` reads) and record why.

    Grants the new manifest no longer asks for are dropped; ``grant`` adds capabilities it asks for (what a
    consent approves). ``upgrade`` and ``canary_promote`` refuse a version that asks for more than the current
    one (approve it with ``consent`` first); ``upgrade``, ``rollback`` and ``consent`` clear a pending upgrade,
    and so does any move to the pending version itself.

    Args:
        actor: who asked (a user id; ``None`` for the admin token; a service name such as ``"canary"``).
        action: one of ``registry.HISTORY_ACTIONS`` other than ``install``.
        reason: free text kept in the history (why a canary was rolled back, ...).

    Raises:
        NotFound: ``not_installed``, ``version_not_found``.
        Conflict: ``consent_required``; ``install_changed`` when another change won the race.
        ApiError: 422 ``signature_invalid`` with a trust bundle (see ``check_signature``).
    """
    if action not in HISTORY_ACTIONS or action == "install":
        raise ValueError(f"not a version change: {action!r}")
    install = await _current(st, tenant_id, extension_id)
    target = await resolve_version(st, extension_id, version)
    new_manifest = st.manifests.get(target)
    if action in CONSENT_CHECKED_ACTIONS:
        diff = capability_diff(st.manifests.get(install.version), new_manifest)
        if diff.requires_consent:
            raise Conflict("consent_required", "the version asks for more than the installed one; a tenant admin "
                           "must approve it (POST .../consent after the upgrade is held)",
                           extra={"diff": diff.to_json()})
    await _check_gates(st, install, target, action)
    requested = set(new_manifest.capabilities) | bundles.ALWAYS_GRANTED
    granted = {cap for cap in (*install.granted_capabilities, *grant) if cap in requested}
    pending = install.pending_version
    clear = action in CLEARS_PENDING_ACTIONS or (pending is not None and pending.id == target.id)
    try:
        return await st.registry.change_install_version(
            tenant_id, extension_id, version_id=target.id, expected_version_id=install.version.id,
            granted_capabilities=sorted(granted), clear_pending=clear, action=action, actor=actor, reason=reason,
        )
    except RecordNotFound:
        raise NotFound("not_installed", "the extension is not installed for this tenant") from None
    except RecordConflict:
        raise Conflict("install_changed", "the install changed version meanwhile; look at it and try again") from None


async def _check_gates(st: GatewayState, install: Install, target: Version, action: str) -> None:
    """What must hold before ``install`` moves to ``target``, whoever moves it.

    With a trust bundle the target's signature must verify now (it may have been registered before the trust
    bundle was set, or its signature replaced since). Forward moves (:data:`GATED_ACTIONS`) also pass the
    journal's upgrade gate, ``_journal_gate.ensure_upgrade_allowed(st, install, target)`` (issue 19).
    """
    if st.settings.trust_bundle is not None:
        await check_signature(st.store, target.content_hash, st.settings.trust_bundle)
    if action in GATED_ACTIONS:
        await ensure_upgrade_allowed(st, install, target)  # the tenant may require a passing upgrade check


UpgradeStatus = Literal["upgraded", "pending_consent", "unchanged"]


@dataclass(frozen=True)
class UpgradeOutcome:
    status: UpgradeStatus
    install: Install
    diff: CapabilityDiff


async def upgrade(st: GatewayState, install: Install, target: Version, *, actor: str | None,
                  reason: str = "") -> UpgradeOutcome:
    """Upgrade (or downgrade) ``install`` to ``target`` unless that asks for more; else hold it for consent.

    Moving to the version already installed changes nothing but withdraws a pending upgrade (the newest request
    stands, as it does when it names another version).
    """
    diff = capability_diff(st.manifests.get(install.version), st.manifests.get(target))
    tenant_id, extension_id = install.tenant_id, install.extension_id
    if target.id == install.version.id:
        if install.pending_version is not None:
            install = await st.registry.set_pending_version(tenant_id, extension_id, None)
        return UpgradeOutcome("unchanged", install, diff)
    if diff.requires_consent:
        if st.settings.trust_bundle is not None:  # refused now rather than when the admin consents
            await check_signature(st.store, target.content_hash, st.settings.trust_bundle)
        held = await st.registry.set_pending_version(tenant_id, extension_id, target.id)
        return UpgradeOutcome("pending_consent", held, diff)
    moved = await set_install_version(st, tenant_id, extension_id, target, actor=actor, action="upgrade",
                                      reason=reason)
    return UpgradeOutcome("upgraded", moved, diff)


async def consent(st: GatewayState, install: Install, *, expected: Version | None, actor: str | None,
                  reason: str = "") -> tuple[Install, CapabilityDiff]:
    """Approve the pending upgrade: move to it and grant the capabilities its diff adds.

    Raises:
        Conflict: ``no_pending_upgrade``; ``pending_changed`` when ``expected`` (what the admin looked at) is
            not the pending version any more.
    """
    pending = install.pending_version
    if pending is None:
        raise Conflict("no_pending_upgrade", "no upgrade is waiting for consent")
    if expected is not None and expected.id != pending.id:
        raise Conflict("pending_changed", "another upgrade replaced the one you approved; review its diff",
                       extra={"pending": version_ref(pending)})
    diff = capability_diff(st.manifests.get(install.version), st.manifests.get(pending))
    moved = await set_install_version(st, install.tenant_id, install.extension_id, pending, actor=actor,
                                      action="consent", reason=reason, grant=diff.added_capabilities)
    return moved, diff


def previous_version(history: Sequence[HistoryEntry]) -> Version | None:
    """The version before the latest change not already undone (``history`` newest first); ``None`` when the
    install row is reached first."""
    undone = 0
    for entry in history:
        if entry.from_version is None:
            return None
        if entry.from_version.id == entry.to_version.id:
            continue  # recorded for its reason only (a canary rolled back before it was promoted)
        if entry.action in ROLLBACK_ACTIONS:
            undone += 1
        elif undone:
            undone -= 1
        else:
            return entry.from_version
    return None


async def rollback(st: GatewayState, install: Install, *, actor: str | None, reason: str = "") -> Install:
    """Restore the version the install ran before (see :func:`previous_version`); clears a pending upgrade.

    Raises:
        Conflict: ``no_previous_version``.
    """
    history = await st.registry.list_install_history(install.tenant_id, install.extension_id,
                                                     limit=MAX_HISTORY_WALK)
    previous = previous_version(history)
    if previous is None:
        raise Conflict("no_previous_version", "the install has no earlier version to roll back to")
    return await set_install_version(st, install.tenant_id, install.extension_id, previous, actor=actor,
                                     action="rollback", reason=reason)
