"""Sessions, the ``/ext-ui`` gate, the runner's install check, health, metrics, and the OpenAPI document."""

from __future__ import annotations

import hmac
import urllib.parse
from typing import Final

from quart import Blueprint, Response, request

import bundles
from contract import UI_TOKEN_SEGMENT

from ._auth import SESSION_COOKIE, authenticate, bearer_token, principal_for_token
from ._bodies import SessionCreate
from ._errors import ApiError, InvalidRequest, NotFound, RegistryError, Unauthorized
from ._host_page import ui_token
from ._metrics import CONTENT_TYPE
from ._openapi import openapi_document
from ._rules import parse_body
from ._state import state
from ._validation import ID_PATTERN, read_json
from ._views import json_response, no_content

UI_METHODS: Final = ["GET", "HEAD"]

blueprint = Blueprint("public", __name__)


@blueprint.post("/api/session")
async def login() -> Response:
    """Exchange an API token for a session cookie (for browsers, which cannot attach bearer tokens to iframes)."""
    st = state()
    token = parse_body(SessionCreate, await read_json(request)).token
    principal = await principal_for_token(st.registry, token)
    response = json_response({"user_id": principal.user.id, "tenant_id": principal.tenant_id,
                              "expires_in_s": st.signer.ttl_s})
    response.set_cookie(SESSION_COOKIE, st.signer.issue(principal.token_id), max_age=st.signer.ttl_s, path="/",
                        httponly=True, samesite="Lax", secure=st.settings.session_cookie_secure)
    return response


@blueprint.delete("/api/session")
async def logout() -> Response:
    response = no_content()
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Lax",
                           secure=state().settings.session_cookie_secure)
    return response


@blueprint.route("/ext-ui/<ext_id>/<content_hash>", methods=UI_METHODS, defaults={"rest": ""})
@blueprint.route("/ext-ui/<ext_id>/<content_hash>/", methods=UI_METHODS, defaults={"rest": ""})
@blueprint.route("/ext-ui/<ext_id>/<content_hash>/<path:rest>", methods=UI_METHODS)
async def ext_ui_gate(ext_id: str, content_hash: str, rest: str) -> Response:
    """308 to the runner's signed ``/ext-ui`` URL of the caller's tenant's active install at that hash; else 404."""
    st = state()
    principal = await authenticate(st.registry, st.signer, request.headers, request.cookies)
    try:
        hex_hash = bundles.parse_content_hash(content_hash)
    except ValueError:
        hex_hash = None
    install = (
        await st.registry.find_active_install(principal.tenant_id, ext_id)
        if hex_hash is not None and ID_PATTERN.fullmatch(ext_id)
        else None
    )
    if install is None or install.version.content_hash != hex_hash:
        raise NotFound("not_installed", "no active install of this extension at that content hash")
    raw = (request.scope.get("raw_path") or request.path.encode("utf-8")).decode("latin-1")
    parts = raw.split("/", 4)  # ["", "ext-ui", "<ext>", "<hash>", "<rest>"]
    tail = parts[4] if len(parts) > 4 else ""
    # The runner learns the tenant from the signed URL only (no ?tenant=: that was an install oracle).
    token = ui_token(principal.tenant_id, install.extension_id, hex_hash)
    signed = f"{UI_TOKEN_SEGMENT}/{token}/" if token is not None else ""
    query = urllib.parse.urlencode([(k, v) for k, v in request.args.items(multi=True) if k != "tenant"])
    location = (
        f"{st.settings.public_runner_base}/ext-ui/{urllib.parse.quote(ext_id, safe='')}/sha256:{hex_hash}/"
        f"{signed}{tail}" + (f"?{query}" if query else "")
    )
    response = Response(b"", status=308)
    response.headers["location"] = location
    response.headers["cache-control"] = "no-store"
    return response


@blueprint.get("/api/installs/validate")
async def validate_install() -> Response:
    """For the runner's strict mode: does (tenant, extension, hash) name an active install? Service token only.

    Without ``tenant``: does any tenant have an active install of (extension, hash)? The runner asks that for a
    UI's own assets (scripts, styles), which browsers request without ``?tenant=``; they are the same bytes for
    every tenant, so the answer reveals nothing tenant-specific, and any runner replica can ask it.

    Without ``hash`` (a tenant is then required): the runner serving an install's own UI origin asks which hash
    the active install serves; the answer adds ``content_hash`` (``null`` when there is none).
    """
    st = state()
    _require_bearer(st.settings.runner_service_token,
                    ApiError("service_token_not_configured", "RUNNER_SERVICE_TOKEN is not set", status=503),
                    "the runner service token is required")
    tenant = request.args.get("tenant", "")
    extension = request.args.get("extension", "")
    errors: dict[str, str] = {}
    if tenant and not ID_PATTERN.fullmatch(tenant):
        errors["tenant"] = "must be an id"
    if not ID_PATTERN.fullmatch(extension):
        errors["extension"] = "is required (an id)"
    raw_hash = request.args.get("hash")
    hex_hash = ""
    # The hash may be left out only by a well-formed lookup (a tenant and an extension); else it is required.
    if raw_hash is not None or not tenant or errors:
        try:
            hex_hash = bundles.parse_content_hash(raw_hash or "")
        except ValueError:
            errors["hash"] = "must be sha256: followed by 64 hex digits"
    if errors:
        raise InvalidRequest(errors)
    if raw_hash is None:  # an isolated UI origin names (tenant, extension): which hash does it serve?
        found = await st.registry.find_active_install(tenant, extension)
        return json_response({"valid": found is not None,
                              "content_hash": None if found is None else f"sha256:{found.version.content_hash}"})
    if not tenant:
        return json_response({"valid": await st.registry.has_active_install_at(extension, hex_hash)})
    install = await st.registry.find_active_install(tenant, extension)
    return json_response({"valid": install is not None and install.version.content_hash == hex_hash})


@blueprint.get("/healthz")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@blueprint.get("/readyz")
async def readyz() -> Response:
    try:
        await state().registry.ping()
    except RegistryError:
        return json_response({"status": "unavailable", "error": "registry_unavailable"}, 503)
    return json_response({"status": "ready"})


@blueprint.get("/metrics")
async def metrics() -> Response:
    """The gateway's metrics (``_metrics.py``), for a bearer of ``GATEWAY_METRICS_TOKEN``; 403
    ``metrics_disabled`` without that setting, 401 for any other caller."""
    st = state()
    _require_bearer(st.settings.metrics_token,
                    ApiError("metrics_disabled", "/metrics is disabled (GATEWAY_METRICS_TOKEN is not set)", status=403),
                    "Authorization: Bearer <GATEWAY_METRICS_TOKEN> required")
    return Response(st.metrics.render(st.audit, st.usage), content_type=CONTENT_TYPE)


def _require_bearer(expected: str | None, unset: ApiError, wanted: str) -> None:
    """The request's bearer token must be ``expected`` (compared in constant time).

    Raises:
        ApiError: ``unset``, when the setting holding ``expected`` is not set.
        Unauthorized: no bearer token, or another one (``wanted`` says which is).
    """
    if expected is None:
        raise unset
    presented = bearer_token(request.headers)
    if presented is None or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Unauthorized("unauthorized", wanted)


@blueprint.get("/api/v1/openapi.json")
async def openapi() -> Response:
    return json_response(openapi_document())
