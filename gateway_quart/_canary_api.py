"""Admin API of canary rollouts (see ``_canary.py`` for routing and judging).

* ``POST /api/v1/extensions/{ext}/canaries`` (admin token): a percentage of one tenant's requests
  (``tenant`` + ``percent``) or every request of a list of tenants (``tenants``);
* ``POST /api/v1/tenants/{t}/installs/{ext}/canary`` (the tenant's admins too): a percentage of that tenant's
  requests;
* ``GET /api/v1/extensions/{ext}/canaries`` (``?state=&limit=``): its canaries, newest first;
* ``GET /api/v1/extensions/{ext}/canaries/{id}``: state, reason, budget and per-arm counts;
* ``POST /api/v1/extensions/{ext}/canaries/{id}/cancel``: stop it; the installs stay where they are;
* ``GET /api/v1/canaries/{id}`` and ``POST /api/v1/canaries/{id}/cancel``: the same by id alone (extctl).

A tenant admin sees and cancels only the canaries of their own tenant's install; any other one is
``canary_not_found``, as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from quart import Blueprint, Response, request

from ._auth import PERMISSION_ADMIN, Principal
from ._bodies import CanaryBudgetBody, CanaryCreate, InstallCanaryCreate
from ._canary import CanaryController
from ._errors import ApiError, Conflict, InvalidRequest, NotFound, RecordConflict, RecordNotFound
from ._rollout import capability_diff, resolve_version
from ._rules import parse_body
from ._state import GatewayState, check_signature, state
from ._validation import ID_HINT, ID_PATTERN, check_id, read_json
from ._views import admin_principal, check_tenant_admin, json_response, require_global_admin, require_tenant_admin
from .registry import (
    CANARY_CANCELLED,
    CANARY_RUNNING,
    CANARY_STATES,
    Canary,
    CanaryBudget,
    Install,
    Version,
    new_id,
    utc_now,
)

DEFAULT_CANARY_LIST_LIMIT: Final = 20
MAX_CANARY_LIST_LIMIT: Final = 200
DEFAULT_CANARY_WINDOW_S: Final = 900
"""How long a canary runs when ``window_s`` is not given: promoted at its end if the budget held."""

blueprint = Blueprint("canaries", __name__, url_prefix="/api/v1")


def _controller(st: GatewayState) -> CanaryController:
    if st.canaries is None:
        raise ApiError("canaries_unavailable", "canary rollouts are not running in this gateway", status=503)
    return st.canaries


def _budget(body: CanaryBudgetBody | None) -> CanaryBudget:
    default = CanaryBudget()
    if body is None:
        return default
    return CanaryBudget(
        max_error_rate=default.max_error_rate if body.max_error_rate is None else body.max_error_rate,
        max_timeout_rate=default.max_timeout_rate if body.max_timeout_rate is None else body.max_timeout_rate,
        max_p99_ms=body.max_p99_ms,
        min_requests=default.min_requests if body.min_requests is None else body.min_requests,
    )


async def _start(st: GatewayState, extension_id: str, *, tenant: str | None, tenants: Sequence[str] | None,
                 percent: float, to: str, budget: CanaryBudget, window_s: int, actor: str | None) -> Canary:
    """Check the targets and versions, record the canary, and route by it at once."""
    check_id(extension_id, "extension_id")
    version = await resolve_version(st, extension_id, to)
    targets = tuple(tenants) if tenants is not None else (tenant,) if tenant is not None else ()
    installs: list[Install] = []
    for tenant_id in targets:
        try:
            installs.append(await st.registry.get_install(tenant_id, extension_id))
        except RecordNotFound:
            raise NotFound("not_installed", f"the extension is not installed for tenant {tenant_id}") from None
    from_versions = {install.version.id for install in installs}
    if len(from_versions) != 1:
        raise Conflict("canary_versions_differ", "the tenants' installs run different versions; a canary "
                       "compares one version with another")
    from_version = installs[0].version
    if from_version.id == version.id:
        raise Conflict("canary_same_version", f"the installs already run {version.version}")
    diff = capability_diff(st.manifests.get(from_version), st.manifests.get(version))
    if diff.requires_consent:
        # A canary serves the new version with today's grants, and its promotion may not add any.
        raise Conflict("consent_required", f"{version.version} asks for more than the installed version; upgrade "
                       "to it (held until a tenant admin consents) instead of a canary", extra={"diff": diff.to_json()})
    if st.settings.trust_bundle is not None:
        await check_signature(st.store, version.content_hash, st.settings.trust_bundle)
    try:
        canary = await st.registry.create_canary(
            canary_id=new_id(), extension_id=extension_id, tenant_id=tenant if tenants is None else None,
            tenants=tenants, from_version_id=from_version.id, to_version_id=version.id, percent=percent,
            budget=budget, window_s=window_s, started_at=utc_now(), actor=actor)
    except RecordConflict:
        raise Conflict("canary_running", "a canary of this extension is already running for these tenants") from None
    await _controller(st).refresh()
    return canary


def _actor(principal: Principal | None) -> str:
    return "admin" if principal is None else f"user:{principal.user.id}"


async def _canary_for(st: GatewayState, extension_id: str | None,
                      canary_id: str) -> tuple[Canary, Principal | None]:
    """The canary, if the caller may see it: the admin token, or an ``extension:admin`` of its tenant
    (``extension_id``, when the path names one, must be the canary's)."""
    principal = await admin_principal(st)
    missing = NotFound("canary_not_found", "no such canary")
    if not ID_PATTERN.fullmatch(canary_id) or (extension_id is not None and not ID_PATTERN.fullmatch(extension_id)):
        raise missing
    try:
        canary = await st.registry.get_canary(canary_id)
    except RecordNotFound:
        raise missing from None
    if extension_id is not None and canary.extension_id != extension_id:
        raise missing
    if principal is not None:
        if canary.tenant_id is None or canary.tenant_id != principal.tenant_id:
            raise missing
        check_tenant_admin(principal, canary.tenant_id, missing="canary_not_found")
    return canary, principal


def _version_view(version: Version) -> dict[str, str]:
    return {"version_id": version.id, "version": version.version, "content_hash": f"sha256:{version.content_hash}"}


async def canary_view(st: GatewayState, canary: Canary) -> dict[str, Any]:
    """A canary as the admin API shows it: live per-arm counts while it runs, the final ones after."""
    if canary.state == CANARY_RUNNING:
        stats = {arm: counts.view() for arm, counts in (await _controller(st).arms(canary.id)).items()}
    else:
        stats = dict(canary.stats or {})
    started = datetime.fromisoformat(canary.started_at.replace("Z", "+00:00"))
    ends_at = (started + timedelta(seconds=canary.window_s)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "id": canary.id,
        "extension_id": canary.extension_id,
        "tenant_id": canary.tenant_id,
        "tenants": None if canary.tenants is None else list(canary.tenants),
        "from": _version_view(await st.registry.get_version(canary.from_version_id)),
        "to": _version_view(await st.registry.get_version(canary.to_version_id)),
        "percent": canary.percent,
        "budget": canary.budget.to_json(),
        "window_s": canary.window_s,
        "state": canary.state,
        "reason": canary.reason,
        "started_at": canary.started_at,
        "ends_at": ends_at,
        "decided_at": canary.decided_at,
        "actor": canary.actor,
        "stats": stats,
    }


@blueprint.post("/extensions/<extension_id>/canaries")
async def start_canary(extension_id: str) -> Response:
    """Start a canary for a percentage of one tenant's requests or for every request of a list of tenants."""
    st = state()
    await require_global_admin(st)
    body = parse_body(CanaryCreate, await read_json(request))
    problems: dict[str, str] = {}
    if (body.percent is None) == (body.tenants is None):
        problems["percent"] = "give percent (with tenant) or tenants, not both"
    elif body.percent is not None and body.tenant is None:
        problems["tenant"] = "is required with percent"
    elif body.tenants is not None and body.tenant is not None:
        problems["tenant"] = "give tenant (with percent) or tenants, not both"
    elif body.tenants is not None:
        if not body.tenants:
            problems["tenants"] = "must name at least one tenant"
        for index, tenant_id in enumerate(body.tenants):
            if not ID_PATTERN.fullmatch(tenant_id):
                problems[f"tenants[{index}]"] = ID_HINT
        if len(set(body.tenants)) != len(body.tenants):
            problems["tenants"] = "must not repeat a tenant"
    if problems:
        raise InvalidRequest(problems)
    tenants = None if body.tenants is None else list(body.tenants)
    canary = await _start(st, extension_id, tenant=body.tenant, tenants=tenants,
                          percent=100.0 if body.percent is None else body.percent, to=body.to,
                          budget=_budget(body.budget), window_s=body.window_s or DEFAULT_CANARY_WINDOW_S,
                          actor="admin")
    return json_response(await canary_view(st, canary), 201)


@blueprint.post("/tenants/<tenant_id>/installs/<extension_id>/canary")
async def start_install_canary(tenant_id: str, extension_id: str) -> Response:
    """Start a canary for a percentage of this tenant's requests (the tenant's admins may)."""
    st = state()
    principal = await require_tenant_admin(st, tenant_id)
    body = parse_body(InstallCanaryCreate, await read_json(request))
    canary = await _start(st, extension_id, tenant=tenant_id, tenants=None, percent=body.percent, to=body.to,
                          budget=_budget(body.budget), window_s=body.window_s or DEFAULT_CANARY_WINDOW_S,
                          actor=_actor(principal))
    return json_response(await canary_view(st, canary), 201)


@blueprint.get("/extensions/<extension_id>/canaries")
async def list_canaries(extension_id: str) -> Response:
    """The extension's canaries, newest first (``state``, ``limit``); a tenant admin sees their tenant's."""
    st = state()
    principal = await admin_principal(st)
    check_id(extension_id, "extension_id")
    wanted = request.args.get("state")
    raw = request.args.get("limit", str(DEFAULT_CANARY_LIST_LIMIT))
    problems: dict[str, str] = {}
    if wanted is not None and wanted not in CANARY_STATES:
        problems["state"] = f"must be one of: {', '.join(CANARY_STATES)}"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_CANARY_LIST_LIMIT:
        problems["limit"] = f"must be an integer in 1..{MAX_CANARY_LIST_LIMIT}"
    if problems:
        raise InvalidRequest(problems)
    tenant = None
    if principal is not None:
        principal.require(PERMISSION_ADMIN)
        tenant = principal.tenant_id
    found = await st.registry.list_canaries(extension_id, state=wanted, tenant_id=tenant, limit=int(raw))
    return json_response({"canaries": [await canary_view(st, canary) for canary in found]})


@blueprint.get("/extensions/<extension_id>/canaries/<canary_id>")
@blueprint.get("/canaries/<canary_id>", defaults={"extension_id": None})
async def get_canary(extension_id: str | None, canary_id: str) -> Response:
    st = state()
    canary, _ = await _canary_for(st, extension_id, canary_id)
    return json_response(await canary_view(st, canary))


@blueprint.post("/extensions/<extension_id>/canaries/<canary_id>/cancel")
@blueprint.post("/canaries/<canary_id>/cancel", defaults={"extension_id": None})
async def cancel_canary(extension_id: str | None, canary_id: str) -> Response:
    """Stop routing to the new version; every install stays at the version it runs."""
    st = state()
    canary, principal = await _canary_for(st, extension_id, canary_id)
    if canary.state != CANARY_RUNNING:
        raise Conflict("canary_not_running", f"the canary has ended ({canary.state})")
    done = await _controller(st).decide(st, canary, CANARY_CANCELLED, f"cancelled by {_actor(principal)}")
    if done is None:
        raise Conflict("canary_not_running", "the canary ended meanwhile")
    return json_response(await canary_view(st, done))
