"""Admin API, part one: tenants, users, API tokens, registered extensions, the audit log, ``/me``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from quart import Blueprint, Response, request

from . import _rollout
from ._auth import PERMISSION_ADMIN, authenticate, generate_token, hash_token
from ._bodies import ExtensionRegister, TenantCreate, TokenCreate, UserCreate
from ._errors import Conflict, InvalidRequest, NotFound, RecordConflict, RecordNotFound
from ._rules import parse_body
from ._state import read_published, state
from ._validation import check_id, read_json
from ._views import (
    admin_principal,
    check_tenant_admin,
    extension_view,
    json_response,
    require_global_admin,
    require_tenant_admin,
    tenant_view,
    token_view,
    user_for_admin,
    user_view,
    version_view,
)
from .registry import new_id

DEFAULT_AUDIT_LIMIT: Final = 100
MAX_AUDIT_LIMIT: Final = 1000
MAX_VERSION_REF: Final = 128

blueprint = Blueprint("admin", __name__, url_prefix="/api/v1")


@blueprint.post("/tenants")
async def create_tenant() -> Response:
    st = state()
    await require_global_admin(st)
    body = parse_body(TenantCreate, await read_json(request))
    try:
        tenant = await st.registry.create_tenant(body.id or new_id(), body.name)
    except RecordConflict:
        raise Conflict("tenant_exists", "a tenant with that id exists") from None
    return json_response(tenant_view(tenant), 201)


@blueprint.get("/tenants/<tenant_id>")
async def get_tenant(tenant_id: str) -> Response:
    st = state()
    await require_tenant_admin(st, tenant_id)
    try:
        return json_response(tenant_view(await st.registry.get_tenant(tenant_id)))
    except RecordNotFound:
        raise NotFound("tenant_not_found", "no such tenant") from None


@blueprint.post("/tenants/<tenant_id>/users")
async def create_user(tenant_id: str) -> Response:
    st = state()
    await require_tenant_admin(st, tenant_id)
    body = parse_body(UserCreate, await read_json(request))
    try:
        user = await st.registry.create_user(
            tenant_id=tenant_id, email=body.email, name=body.name or body.email,
            user_type=body.user_type or "internal", roles=sorted(set(body.roles)), client_name=body.client_name,
            client_id=body.client_id,
        )
    except RecordNotFound:
        raise NotFound("tenant_not_found", "no such tenant") from None
    except RecordConflict:
        raise Conflict("user_exists", "a user with that email exists in this tenant") from None
    return json_response(user_view(user), 201)


@blueprint.get("/users/<user_id>")
async def get_user(user_id: str) -> Response:
    return json_response(user_view(await user_for_admin(state(), user_id)))


@blueprint.post("/users/<user_id>/tokens")
async def create_token(user_id: str) -> Response:
    """Mint an API token; the token is in this response only (the registry keeps its SHA-256)."""
    st = state()
    user = await user_for_admin(st, user_id)
    body = parse_body(TokenCreate, await read_json(request))
    expires_at = None
    if body.expires_in_s is not None:
        expires_at = (datetime.now(UTC) + timedelta(seconds=body.expires_in_s)).isoformat(timespec="seconds")
    token = generate_token()
    record = await st.registry.create_token(
        user_id=user.id, token_sha256=hash_token(token), name=body.name or "api", expires_at=expires_at
    )
    return json_response({**token_view(record), "token": token, "tenant_id": user.tenant_id}, 201)


@blueprint.delete("/tokens/<token_id>")
async def revoke_token(token_id: str) -> Response:
    st = state()
    principal = await admin_principal(st)
    found = await st.registry.find_token_by_id(token_id)
    # A token of another tenant looks exactly like a missing one.
    if found is None or (principal is not None and principal.tenant_id != found[1].tenant_id):
        raise NotFound("token_not_found", "no such token")
    if principal is not None:
        check_tenant_admin(principal, found[1].tenant_id)
    return json_response(token_view(await st.registry.revoke_token(token_id)))


@blueprint.post("/extensions")
async def register_extension() -> Response:
    """Register a bundle already published to the store, by content hash."""
    st = state()
    await require_global_admin(st)
    body = parse_body(ExtensionRegister, await read_json(request))
    published = await read_published(st.store, body.content_hash, trust=st.settings.trust_bundle)
    manifest = published.manifest
    try:
        extension, version, created = await st.registry.register_version(
            extension_id=body.extension_id, name=manifest.name, publisher=manifest.publisher or "",
            version=manifest.version, content_hash=published.hex, manifest_json=published.manifest_json,
            signature_status=published.signature_status,
        )
    except RecordConflict as exc:
        raise Conflict("extension_conflict", exc.message) from None
    answer = {"extension": extension_view(extension), "version": version_view(version, st), "created": created}
    return json_response(answer, 201 if created else 200)


@blueprint.get("/extensions/<extension_id>")
async def get_extension(extension_id: str) -> Response:
    st = state()
    await require_global_admin(st)
    try:
        extension = await st.registry.get_extension(extension_id)
    except RecordNotFound:
        raise NotFound("extension_not_found", "no such extension") from None
    versions = [version_view(v, st) for v in await st.registry.list_versions(extension_id)]
    return json_response({**extension_view(extension), "versions": versions})


@blueprint.get("/extensions/<extension_id>/diff")
async def diff_versions(extension_id: str) -> Response:
    """What version ``to`` asks for that ``from`` did not (capabilities, egress hosts, secrets), and what it
    drops; each a version string, ``sha256:<hex>`` or version id. A tenant admin sees the extensions their tenant
    has installed; the admin token sees all."""
    st = state()
    principal = await admin_principal(st)
    check_id(extension_id, "extension_id")
    if principal is not None:
        principal.require(PERMISSION_ADMIN)
        try:
            await st.registry.get_install(principal.tenant_id, extension_id)
        except RecordNotFound:
            raise NotFound("extension_not_found", "no such extension") from None
    refs = {name: request.args.get(name, "") for name in ("from", "to")}
    bad = {name: "is required: a version, sha256:<hex> or version id" for name, ref in refs.items()
           if not ref or len(ref) > MAX_VERSION_REF or not ref.isprintable()}
    if bad:
        raise InvalidRequest(bad)
    old = await _rollout.resolve_version(st, extension_id, refs["from"])
    new = await _rollout.resolve_version(st, extension_id, refs["to"])
    diff = _rollout.capability_diff(st.manifests.get(old), st.manifests.get(new))
    return json_response({"extension_id": extension_id, "from": _rollout.version_ref(old),
                          "to": _rollout.version_ref(new), "diff": diff.to_json()})


@blueprint.get("/tenants/<tenant_id>/audit")
async def list_audit(tenant_id: str) -> Response:
    st = state()
    await require_tenant_admin(st, tenant_id)
    raw = request.args.get("limit", str(DEFAULT_AUDIT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_AUDIT_LIMIT:
        raise InvalidRequest({"limit": f"must be an integer in 1..{MAX_AUDIT_LIMIT}"})
    await st.audit.flush()  # rows of calls already answered are still being written in the background
    entries = await st.registry.list_audit(tenant_id, limit=int(raw))
    return json_response({"entries": [
        {"id": e.id, "at": e.at, "tenant_id": e.tenant_id, "user_id": e.user_id, "extension_id": e.extension_id,
         "method": e.method, "path": e.path, "status": e.status, "request_id": e.request_id}
        for e in entries
    ]})


@blueprint.get("/me")
async def me() -> Response:
    """Who the credential belongs to: user, tenant and permissions."""
    st = state()
    principal = await authenticate(st.registry, st.signer, request.headers, request.cookies)
    return json_response({**user_view(principal.user), "permissions": sorted(principal.permissions),
                          "via": principal.via})

