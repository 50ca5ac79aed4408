"""Admin API, part two: a tenant's installs — install, upgrade, enable/disable, uninstall, config, secrets, grants;
and their versions: upgrade (held for consent when it asks for more), consent, rollback, history (``_rollout.py``).

Secrets are sealed to ``RUNNER_SECRETS_PUBLIC_KEY`` the moment they arrive; the plaintext is never stored,
logged or sent back. Grants are limited to what the installed version's manifest asks for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from quart import Blueprint, Response, request

import bundles
import sealing

from . import _rollout
from ._auth import Principal
from ._bodies import (
    CapabilitiesReplace,
    ConfigReplace,
    ConsentApprove,
    InstallCreate,
    InstallUpgrade,
    RollbackRequest,
    SecretsReplace,
    VersionPick,
)
from ._errors import ApiError, Conflict, InvalidRequest, NotFound, RecordConflict, RecordNotFound
from ._rules import parse_body, read_body
from ._state import GatewayState, check_signature, state
from ._validation import Fields, check_id, read_json
from ._views import install_view, json_response, no_content, require_tenant_admin
from .registry import Install, SealedSecrets, Version

DEFAULT_HISTORY_LIMIT: Final = 100
MAX_HISTORY_LIMIT: Final = 1000

blueprint = Blueprint("installs", __name__, url_prefix="/api/v1/tenants/<tenant_id>/installs")


async def _install(st: GatewayState, tenant_id: str, extension_id: str) -> Install:
    return (await _admin_install(st, tenant_id, extension_id))[1]


async def _admin_install(st: GatewayState, tenant_id: str, extension_id: str) -> tuple[Principal | None, Install]:
    """The caller (``None`` for the admin token) and the install they administer."""
    principal = await require_tenant_admin(st, tenant_id)
    check_id(extension_id, "extension_id")
    try:
        return principal, await st.registry.get_install(tenant_id, extension_id)
    except RecordNotFound:
        raise NotFound("not_installed", "the extension is not installed for this tenant") from None


def _actor(principal: Principal | None) -> str | None:
    """Who a history row names: the user's id; ``None`` for the gateway admin token."""
    return None if principal is None else principal.user.id


async def _pick_version(st: GatewayState, extension_id: str, pick: VersionPick, fields: Fields, *,
                        required: bool) -> Version | None:
    """The version named by ``version_id``, ``content_hash`` or ``version`` (one at most; a version string names
    the newest bundle registered under it); the newest when none (``None`` when not ``required`` here).

    Problems go to ``fields`` (which read ``pick``); the registry is consulted only when there are none.
    """
    version_id, content_hash, named = pick.version_id, pick.content_hash, pick.version
    given = [name for name, value in (("version_id", version_id), ("content_hash", content_hash),
                                      ("version", named)) if value]
    if len(given) > 1:
        fields.errors[given[1]] = "give one of version_id, content_hash or version"
    elif required and not given:
        fields.errors["version_id"] = "version_id, content_hash or version is required"
    if fields.errors:
        return None
    if named:
        versions = await st.registry.list_versions(extension_id, version=named)
        if not versions:
            raise NotFound("version_not_found", f"no version {named} of this extension is registered")
        return versions[-1]
    if version_id:
        try:
            version = await st.registry.get_version(version_id)
        except RecordNotFound:
            version = None
        if version is None or version.extension_id != extension_id:
            raise NotFound("version_not_found", "no such version of this extension")
        return version
    if content_hash:
        try:
            hex_hash = bundles.parse_content_hash(content_hash)
        except ValueError:
            fields.errors["content_hash"] = "must be sha256: followed by 64 hex digits"
            return None
        version = await st.registry.find_version(extension_id, hex_hash)
        if version is None:
            raise NotFound("version_not_found", "that content hash is not registered for this extension")
        return version
    versions = await st.registry.list_versions(extension_id)
    if not versions:
        raise NotFound("extension_not_found", "no registered versions of this extension")
    return versions[-1]


def _check_grants(st: GatewayState, version: Version, wanted: Iterable[str], field: str) -> list[str]:
    """Normalize requested grants; each must be a known capability the manifest asks for (or always granted).

    Raises:
        InvalidRequest: ``fields`` names each refused capability.
    """
    requested = set(st.manifests.get(version).capabilities)
    errors: dict[str, str] = {}
    granted: set[str] = set()
    for index, raw in enumerate(wanted):
        cap = raw.strip().lower()
        if cap not in bundles.KNOWN_CAPABILITIES:
            errors[f"{field}[{index}]"] = f"{cap} is not a known capability"
        elif cap not in requested and cap not in bundles.ALWAYS_GRANTED:
            errors[f"{field}[{index}]"] = f"{cap} is not requested by the manifest"
        else:
            granted.add(cap)
    if errors:
        raise InvalidRequest(errors, code="capabilities_not_requested")
    return sorted(granted)


async def _check_signature(st: GatewayState, version: Version) -> None:
    """With a trust bundle, the version's signature must verify now: it may have been registered before the
    trust bundle was set, or its signature replaced since."""
    if st.settings.trust_bundle is not None:
        await check_signature(st.store, version.content_hash, st.settings.trust_bundle)


@blueprint.get("")
async def list_installs(tenant_id: str) -> Response:
    st = state()
    await require_tenant_admin(st, tenant_id)
    return json_response({"installs": [install_view(i, st) for i in await st.registry.list_installs(tenant_id)]})


@blueprint.post("")
async def create_install(tenant_id: str) -> Response:
    st = state()
    principal = await require_tenant_admin(st, tenant_id)
    fields = Fields(await read_json(request))
    body = read_body(fields, InstallCreate)
    version = await _pick_version(st, body.extension_id, body, fields, required=False)
    fields.finish()
    assert version is not None
    granted = _check_grants(st, version, body.granted_capabilities or [], "granted_capabilities")
    await _check_signature(st, version)
    try:
        install = await st.registry.create_install(
            tenant_id=tenant_id, extension_id=body.extension_id, version_id=version.id,
            granted_capabilities=granted, config=body.config or {}, actor=_actor(principal),
        )
        if body.enabled is False:
            install = await st.registry.update_install(tenant_id, body.extension_id, enabled=False)
    except RecordNotFound:
        raise NotFound("tenant_not_found", "no such tenant") from None
    except RecordConflict:
        raise Conflict("already_installed", "the extension is already installed; upgrade it instead") from None
    return json_response(install_view(install, st), 201)


@blueprint.get("/<extension_id>")
async def get_install(tenant_id: str, extension_id: str) -> Response:
    st = state()
    return json_response(install_view(await _install(st, tenant_id, extension_id), st))


@blueprint.delete("/<extension_id>")
async def uninstall(tenant_id: str, extension_id: str) -> Response:
    st = state()
    await _install(st, tenant_id, extension_id)
    await st.registry.delete_install(tenant_id, extension_id)
    return no_content()


@blueprint.post("/<extension_id>/upgrade")
async def upgrade(tenant_id: str, extension_id: str) -> Response:
    """Move the install to another registered version (grants the new manifest no longer asks for are dropped);
    202 ``pending_consent`` with the diff, the install unchanged, when that version asks for more."""
    st = state()
    principal, current = await _admin_install(st, tenant_id, extension_id)
    fields = Fields(await read_json(request))
    body = read_body(fields, InstallUpgrade)
    version = await _pick_version(st, extension_id, body, fields, required=True)
    fields.finish()
    assert version is not None
    outcome = await _rollout.upgrade(st, current, version, actor=_actor(principal), reason=body.reason or "")
    if outcome.status == "pending_consent":
        return json_response({"status": "pending_consent", "diff": outcome.diff.to_json(),
                              "pending": _rollout.version_ref(version), "install": install_view(outcome.install, st)},
                             202)
    return json_response(install_view(outcome.install, st))


@blueprint.post("/<extension_id>/consent")
async def consent(tenant_id: str, extension_id: str) -> Response:
    """Approve the upgrade waiting for consent: the install moves to it, with the capabilities it added."""
    st = state()
    principal, current = await _admin_install(st, tenant_id, extension_id)
    fields = Fields(await read_json(request))
    body = read_body(fields, ConsentApprove)
    expected = await _pick_version(st, extension_id, body, fields, required=False) if (
        body.version_id or body.content_hash or body.version) else None
    fields.finish()
    install, _ = await _rollout.consent(st, current, expected=expected, actor=_actor(principal),
                                        reason=body.reason or "")
    return json_response(install_view(install, st))


@blueprint.post("/<extension_id>/rollback")
async def rollback(tenant_id: str, extension_id: str) -> Response:
    """Restore the version the install ran before, in one call (a pending upgrade is withdrawn)."""
    st = state()
    principal, current = await _admin_install(st, tenant_id, extension_id)
    body = parse_body(RollbackRequest, await read_json(request))
    install = await _rollout.rollback(st, current, actor=_actor(principal), reason=body.reason or "")
    return json_response(install_view(install, st))


@blueprint.get("/<extension_id>/history")
async def history(tenant_id: str, extension_id: str) -> Response:
    """The install's version changes, newest first (``limit``, default 100)."""
    st = state()
    await _install(st, tenant_id, extension_id)
    raw = request.args.get("limit", str(DEFAULT_HISTORY_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_HISTORY_LIMIT:
        raise InvalidRequest({"limit": f"must be an integer in 1..{MAX_HISTORY_LIMIT}"})
    entries = await st.registry.list_install_history(tenant_id, extension_id, limit=int(raw))
    return json_response({"entries": [_rollout.history_view(e) for e in entries]})


@blueprint.post("/<extension_id>/enable")
async def enable(tenant_id: str, extension_id: str) -> Response:
    st = state()
    await _install(st, tenant_id, extension_id)
    return json_response(install_view(await st.registry.update_install(tenant_id, extension_id, enabled=True), st))


@blueprint.post("/<extension_id>/disable")
async def disable(tenant_id: str, extension_id: str) -> Response:
    st = state()
    await _install(st, tenant_id, extension_id)
    return json_response(install_view(await st.registry.update_install(tenant_id, extension_id, enabled=False), st))


@blueprint.put("/<extension_id>/config")
async def set_config(tenant_id: str, extension_id: str) -> Response:
    st = state()
    await _install(st, tenant_id, extension_id)
    config = parse_body(ConfigReplace, await read_json(request)).config
    return json_response(install_view(await st.registry.update_install(tenant_id, extension_id, config=config), st))


@blueprint.put("/<extension_id>/capabilities")
async def set_capabilities(tenant_id: str, extension_id: str) -> Response:
    st = state()
    install = await _install(st, tenant_id, extension_id)
    wanted = parse_body(CapabilitiesReplace, await read_json(request)).capabilities
    granted = _check_grants(st, install.version, wanted, "capabilities")
    updated = await st.registry.update_install(tenant_id, extension_id, granted_capabilities=granted)
    return json_response(install_view(updated, st))


@blueprint.put("/<extension_id>/secrets")
async def set_secrets(tenant_id: str, extension_id: str) -> Response:
    """Replace the install's secrets with a new sealed envelope; the answer names keys, never values."""
    st = state()
    await _install(st, tenant_id, extension_id)
    public_key = st.settings.runner_secrets_public_key
    if public_key is None:
        raise ApiError("secrets_unavailable", "RUNNER_SECRETS_PUBLIC_KEY is not set", status=503)
    body = parse_body(SecretsReplace, await read_json(request))
    try:
        envelope = sealing.seal(body.secrets, public_key, tenant_id=tenant_id, extension_id=extension_id,
                                expires_at=body.expires_at)
    except sealing.SealingError as exc:
        raise InvalidRequest({"secrets": exc.message}) from None
    sealed = SealedSecrets(envelope=envelope, keys=tuple(sorted(body.secrets)), expires_at=envelope.get("expires_at"))
    del body  # the plaintext goes no further than the sealing call
    install = await st.registry.update_install(tenant_id, extension_id, secrets=sealed)
    assert install.secrets is not None
    return json_response({"keys": list(install.secrets.keys), "expires_at": install.secrets.expires_at,
                          "algorithm": envelope["algorithm"]})


@blueprint.delete("/<extension_id>/secrets")
async def clear_secrets(tenant_id: str, extension_id: str) -> Response:
    st = state()
    await _install(st, tenant_id, extension_id)
    await st.registry.update_install(tenant_id, extension_id, secrets=None)
    return no_content()
