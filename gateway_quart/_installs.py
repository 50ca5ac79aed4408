"""Admin API, part two: a tenant's installs — install, upgrade, enable/disable, uninstall, config, secrets, grants.

Secrets are sealed to ``RUNNER_SECRETS_PUBLIC_KEY`` the moment they arrive; the plaintext is never stored,
logged or sent back. Grants are limited to what the installed version's manifest asks for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from quart import Blueprint, Response, request

import bundles
import sealing

from ._errors import ApiError, Conflict, InvalidRequest, NotFound, RecordConflict, RecordNotFound
from ._state import GatewayState, state
from ._validation import ID_PATTERN, Fields, check_id, read_json
from ._views import install_view, json_response, no_content, require_tenant_admin
from .registry import Install, SealedSecrets, Version

MAX_CONFIG_ENTRIES: Final = 256
MAX_CONFIG_VALUE: Final = 8 * 1024
MAX_SECRET_ENTRIES: Final = 128
MAX_SECRET_VALUE: Final = 64 * 1024
_KEY_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")

blueprint = Blueprint("installs", __name__, url_prefix="/api/v1/tenants/<tenant_id>/installs")


async def _install(st: GatewayState, tenant_id: str, extension_id: str) -> Install:
    await require_tenant_admin(st, tenant_id)
    check_id(extension_id, "extension_id")
    try:
        return await st.registry.get_install(tenant_id, extension_id)
    except RecordNotFound:
        raise NotFound("not_installed", "the extension is not installed for this tenant") from None


async def _pick_version(st: GatewayState, extension_id: str, fields: Fields, *, required: bool) -> Version | None:
    """The version named by ``version_id`` or ``content_hash`` (one at most); the newest when neither."""
    version_id = fields.string("version_id", max_len=128)
    content_hash = fields.string("content_hash", max_len=80)
    if version_id and content_hash:
        fields.errors["version_id"] = "give version_id or content_hash, not both"
    elif required and not version_id and not content_hash:
        fields.errors["version_id"] = "version_id or content_hash is required"
    if fields.errors:
        return None
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


@blueprint.get("")
async def list_installs(tenant_id: str) -> Response:
    st = state()
    await require_tenant_admin(st, tenant_id)
    return json_response({"installs": [install_view(i, st) for i in await st.registry.list_installs(tenant_id)]})


@blueprint.post("")
async def create_install(tenant_id: str) -> Response:
    st = state()
    await require_tenant_admin(st, tenant_id)
    fields = Fields(await read_json(request))
    extension_id = fields.string("extension_id", required=True, max_len=128, pattern=ID_PATTERN)
    grants = fields.string_list("granted_capabilities", max_items=64) or []
    config = fields.string_map("config", max_items=MAX_CONFIG_ENTRIES, key_pattern=_KEY_RE,
                               max_value_len=MAX_CONFIG_VALUE) or {}
    enabled = fields.boolean("enabled")
    version = await _pick_version(st, extension_id, fields, required=False)
    fields.finish()
    assert version is not None
    granted = _check_grants(st, version, grants, "granted_capabilities")
    try:
        install = await st.registry.create_install(
            tenant_id=tenant_id, extension_id=extension_id, version_id=version.id,
            granted_capabilities=granted, config=config,
        )
        if enabled is False:
            install = await st.registry.update_install(tenant_id, extension_id, enabled=False)
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
    """Move the install to another registered version; grants the new manifest no longer asks for are dropped."""
    st = state()
    current = await _install(st, tenant_id, extension_id)
    fields = Fields(await read_json(request))
    version = await _pick_version(st, extension_id, fields, required=True)
    fields.finish()
    assert version is not None
    still_requested = set(st.manifests.get(version).capabilities) | bundles.ALWAYS_GRANTED
    granted = [cap for cap in current.granted_capabilities if cap in still_requested]
    install = await st.registry.update_install(
        tenant_id, extension_id, version_id=version.id, granted_capabilities=granted
    )
    return json_response(install_view(install, st))


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
    fields = Fields(await read_json(request))
    config = fields.string_map("config", required=True, max_items=MAX_CONFIG_ENTRIES, key_pattern=_KEY_RE,
                               max_value_len=MAX_CONFIG_VALUE)
    fields.finish()
    return json_response(install_view(await st.registry.update_install(tenant_id, extension_id, config=config), st))


@blueprint.put("/<extension_id>/capabilities")
async def set_capabilities(tenant_id: str, extension_id: str) -> Response:
    st = state()
    install = await _install(st, tenant_id, extension_id)
    fields = Fields(await read_json(request))
    wanted = fields.string_list("capabilities", required=True, max_items=64)
    fields.finish()
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
    fields = Fields(await read_json(request))
    secrets = fields.string_map("secrets", required=True, max_items=MAX_SECRET_ENTRIES, key_pattern=_KEY_RE,
                                max_value_len=MAX_SECRET_VALUE)
    expires_at = fields.timestamp("expires_at")
    fields.finish()
    try:
        envelope = sealing.seal(secrets, public_key, tenant_id=tenant_id, extension_id=extension_id,
                                expires_at=expires_at)
    except sealing.SealingError as exc:
        raise InvalidRequest({"secrets": exc.message}) from None
    sealed = SealedSecrets(envelope=envelope, keys=tuple(sorted(secrets)), expires_at=envelope.get("expires_at"))
    del secrets  # the plaintext goes no further than the sealing call
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
