"""JSON shapes of registry records in the admin API, admin authorization, and small response helpers."""

from __future__ import annotations

import json
from typing import Any

from quart import Response, request

from ._auth import PERMISSION_ADMIN, Principal, admin_token_matches, authenticate, bearer_token, check_origin
from ._errors import Forbidden, NotFound, RecordNotFound
from ._state import GatewayState
from .registry import ApiToken, Extension, Install, Tenant, User, Version


def json_response(data: object, status: int = 200) -> Response:
    return Response(json.dumps(data, ensure_ascii=False), status=status, content_type="application/json")


def no_content() -> Response:
    return Response(b"", status=204)


async def require_global_admin(st: GatewayState) -> None:
    """Only the ``GATEWAY_ADMIN_TOKEN`` may do this (create tenants, register bundles).

    Raises:
        Unauthorized: no or a wrong credential.
        Forbidden: ``admin_token_required`` for a valid user credential.
    """
    token = bearer_token(request.headers)
    if admin_token_matches(token, st.settings.admin_token):
        return
    if token is None and st.settings.admin_token is None:
        raise Forbidden("admin_disabled", "the admin API is disabled (GATEWAY_ADMIN_TOKEN is not set)")
    await authenticate(st.registry, st.signer, request.headers, request.cookies)
    raise Forbidden("admin_token_required", "this operation needs the gateway admin token")


async def admin_principal(st: GatewayState) -> Principal | None:
    """``None`` for the admin token, else the authenticated user (not yet checked for a tenant).

    Raises:
        Unauthorized: no valid credential.
        Forbidden: ``origin_not_allowed`` for a cross-site request made with a session cookie.
    """
    if admin_token_matches(bearer_token(request.headers), st.settings.admin_token):
        return None
    principal = await authenticate(st.registry, st.signer, request.headers, request.cookies)
    check_origin(method=request.method, principal=principal, origin=request.headers.get("origin"),
                 own_origin=_own_origin, allowed=st.settings.allowed_origins)
    return principal


def check_tenant_admin(principal: Principal, tenant_id: str, *, missing: str = "tenant_not_found") -> None:
    """A user administers only their own tenant, and only with ``extension:admin``.

    Raises:
        NotFound: ``missing`` when the user belongs to another tenant (existence is not revealed).
        Forbidden: the user lacks ``extension:admin``.
    """
    if principal.tenant_id != tenant_id:
        raise NotFound(missing, "not found")
    principal.require(PERMISSION_ADMIN)


async def require_tenant_admin(st: GatewayState, tenant_id: str) -> Principal | None:
    """The admin token, or a user of ``tenant_id`` holding ``extension:admin``; ``None`` for the admin token."""
    principal = await admin_principal(st)
    if principal is not None:
        check_tenant_admin(principal, tenant_id)
    return principal


async def user_for_admin(st: GatewayState, user_id: str) -> User:
    """Load a user the caller may administer (admin token, or an ``extension:admin`` of the same tenant)."""
    principal = await admin_principal(st)
    try:
        user = await st.registry.get_user(user_id)
    except RecordNotFound:
        raise NotFound("user_not_found", "no such user") from None
    if principal is not None:
        check_tenant_admin(principal, user.tenant_id, missing="user_not_found")
    return user


def tenant_view(tenant: Tenant) -> dict[str, Any]:
    return {"id": tenant.id, "name": tenant.name, "created_at": tenant.created_at}


def user_view(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "tenant_id": user.tenant_id,
        "email": user.email,
        "name": user.name,
        "user_type": user.user_type,
        "roles": list(user.roles),
        "client_name": user.client_name,
        "client_id": user.client_id,
        "created_at": user.created_at,
    }


def token_view(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "user_id": token.user_id,
        "name": token.name,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    }


def extension_view(extension: Extension) -> dict[str, Any]:
    return {
        "id": extension.id,
        "name": extension.name,
        "publisher": extension.publisher or None,
        "created_at": extension.created_at,
    }


def version_view(version: Version, st: GatewayState) -> dict[str, Any]:
    manifest = st.manifests.get(version)
    return {
        "id": version.id,
        "extension_id": version.extension_id,
        "version": version.version,
        "content_hash": f"sha256:{version.content_hash}",
        "signature_status": version.signature_status,
        "capabilities": list(manifest.capabilities),
        "endpoints": [{"method": e.method, "path": e.path} for e in manifest.endpoints or ()],
        "has_ui": manifest.ui is not None,
        "created_at": version.created_at,
    }


def install_view(install: Install, st: GatewayState) -> dict[str, Any]:
    manifest = st.manifests.get(install.version)
    secrets = install.secrets
    return {
        "id": install.id,
        "tenant_id": install.tenant_id,
        "extension_id": install.extension_id,
        "version_id": install.version.id,
        "version": install.version.version,
        "content_hash": f"sha256:{install.version.content_hash}",
        "signature_status": install.version.signature_status,
        "enabled": install.enabled,
        "requested_capabilities": list(manifest.capabilities),
        "granted_capabilities": list(install.granted_capabilities),
        "config": dict(install.config),
        # Names and expiry only: values are sealed and the gateway cannot read them back.
        "secrets": None if secrets is None else {"keys": list(secrets.keys), "expires_at": secrets.expires_at},
        "created_at": install.created_at,
        "updated_at": install.updated_at,
        "journal_policy": install.journal_policy,
        # An upgrade held until a tenant admin consents (POST .../consent); the install serves ``version``.
        "pending": None if install.pending_version is None else {
            "version_id": install.pending_version.id, "version": install.pending_version.version,
            "content_hash": f"sha256:{install.pending_version.content_hash}", "since": install.pending_since,
        },
    }


def _own_origin() -> str:
    return request.host_url.rstrip("/")
