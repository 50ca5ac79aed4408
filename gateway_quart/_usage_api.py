"""Admin API, usage part: the usage report (billing), tenant budgets, and the least-privilege report of an install.

``GET /api/v1/usage`` answers the sums of the ``usage_minutes`` rows (``_usage.py``) of one tenant over
``[from, to)`` per bucket (minute, hour or day) and extension, with totals. A global admin names any tenant; a
tenant admin reads only their own (another tenant is 404, as everywhere in this API). Budgets are set by the
global admin and read by the tenant's admins. The privileges report compares an install's grants with the host
calls its invocations made (``calls.<capability>`` usage keys) over the last N days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from quart import Blueprint, Response, request

import bundles
from contract import USAGE_FIELDS

from ._bodies import BudgetsReplace
from ._budgets import PERIOD_SECONDS
from ._errors import InvalidRequest, NotFound, RecordNotFound
from ._rules import parse_body
from ._state import state
from ._validation import ID_PATTERN, check_id, read_json
from ._views import admin_principal, check_tenant_admin, json_response, require_global_admin, require_tenant_admin
from .registry import Budget, UsageBucket

GRANULARITIES: Final = ("minute", "hour", "day")
MAX_RANGE: Final = {"minute": timedelta(days=2), "hour": timedelta(days=93), "day": timedelta(days=3660)}
"""The longest ``[from, to)`` per granularity: at most a few thousand buckets per extension in one answer."""
DEFAULT_PRIVILEGE_DAYS: Final = 30
MAX_PRIVILEGE_DAYS: Final = 366
COUNTERS: Final = ("invocations", "errors", *USAGE_FIELDS)

CAPABILITY_INTERFACES: Final[Mapping[str, tuple[str, ...]]] = {
    "cap:http.fetch": ("http",),
    "cap:storage.kv": ("storage",),
    "cap:secrets.get": ("secrets",),
    "cap:ui.proxy": ("ui-proxy",),
    "cap:scheduler.manage": ("scheduler",),
    "cap:invoice.manual.create": ("invoicing",),
    "cap:client.read": ("clients",),
    "cap:service.read": ("services",),
    "cap:context.read": ("context",),
    "cap:log.emit": ("logging",),
    "cap:user.read": ("user", "user-v2"),
}
"""The runner's host interfaces behind each grant: a runner may name calls by either (``calls.http`` or
``calls.cap:http.fetch``); the report sums both."""

blueprint = Blueprint("usage", __name__, url_prefix="/api/v1")


# -- usage ------------------------------------------------------------------------------------------------------


@blueprint.get("/usage")
async def usage_report() -> Response:
    """Sums of a tenant's usage over ``[from, to)``, per bucket and extension, with totals (for billing)."""
    st = state()
    principal = await admin_principal(st)
    args = request.args
    tenant_id = args.get("tenant")
    if principal is None:
        if tenant_id is None:
            raise InvalidRequest({"tenant": "is required with the admin token"})
    else:
        tenant_id = tenant_id if tenant_id is not None else principal.tenant_id
    errors: dict[str, str] = {}
    if not ID_PATTERN.fullmatch(tenant_id):
        errors["tenant"] = "must be a tenant id"
    granularity = args.get("granularity", "hour")
    if granularity not in GRANULARITIES:
        errors["granularity"] = f"must be one of: {', '.join(GRANULARITIES)}"
    extension_id = args.get("extension")
    if extension_id is not None and not ID_PATTERN.fullmatch(extension_id):
        errors["extension"] = "must be an extension id"
    start = _instant(args.get("from"), "from", errors, required=True)
    end = _instant(args.get("to"), "to", errors, required=False)
    if end is None and "to" not in errors:
        end = _floor_minute(datetime.now(UTC)) + timedelta(minutes=1)  # the current minute included
    if start is not None and end is not None and not errors:
        if end <= start:
            errors["to"] = "must be after from"
        elif end - start > MAX_RANGE[granularity]:
            errors["to"] = f"at most {MAX_RANGE[granularity].days} days after from with granularity {granularity}"
    if errors:
        raise InvalidRequest(errors)
    assert start is not None
    assert end is not None
    if principal is not None:
        check_tenant_admin(principal, tenant_id)  # another tenant: 404, as a missing one
    else:
        try:
            await st.registry.get_tenant(tenant_id)
        except RecordNotFound:
            raise NotFound("tenant_not_found", "no such tenant") from None
    if st.usage is not None:
        await st.usage.flush()  # sums of calls already answered by this gateway are in memory still
    buckets = await st.registry.usage_buckets(tenant_id, start=_rfc3339(start), end=_rfc3339(end),
                                              extension_id=extension_id, granularity=granularity)
    per_extension: dict[str, dict[str, Any]] = {}
    for bucket in buckets:
        per_extension[bucket.extension_id] = _sum([per_extension.get(bucket.extension_id, _zero()), _view(bucket)])
    return json_response({
        "tenant_id": tenant_id,
        "extension_id": extension_id,
        "from": _rfc3339(start),
        "to": _rfc3339(end),
        "granularity": granularity,
        "counters": list(COUNTERS),
        "totals": _sum(per_extension.values()),
        "extensions": per_extension,
        "series": [{"start": b.start, "extension_id": b.extension_id, **_view(b)} for b in buckets],
    })


@blueprint.get("/usage/statistics")
async def usage_statistics() -> Response:
    """This gateway's accounting counters (admin token): answers recorded, dropped (the pending table was full),
    rows written, failed writes, pending sums; budget refusals and Redis fallbacks. Per process, since start."""
    st = state()
    await require_global_admin(st)
    recorder = st.usage.statistics() if st.usage is not None else None
    return json_response({
        "usage": None if recorder is None else {
            "recorded": recorder.recorded, "dropped": recorder.dropped, "flushed_rows": recorder.flushed_rows,
            "failed_writes": recorder.failed_writes, "pending_rows": recorder.pending_rows},
        "budgets": st.budgets.statistics() if st.budgets is not None else None,
    })


def _instant(raw: str | None, name: str, errors: dict[str, str], *, required: bool) -> datetime | None:
    """An RFC 3339 timestamp (offset required) or a date (its UTC midnight), floored to the minute."""
    if raw is None or not raw.strip():
        if required:
            errors[name] = "is required (RFC 3339 timestamp or YYYY-MM-DD)"
        return None
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None or not 2000 <= value.year <= 9998:
        errors[name] = "must be an RFC 3339 timestamp with an offset (2026-12-06T10:00:00Z) or YYYY-MM-DD"
        return None
    return _floor_minute(value.astimezone(UTC))


def _floor_minute(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


def _rfc3339(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _zero() -> dict[str, Any]:
    return {**dict.fromkeys(COUNTERS, 0), "calls": {}}


def _view(bucket: UsageBucket) -> dict[str, Any]:
    return {"invocations": bucket.invocations, "errors": bucket.errors,
            **{name: _number(bucket.fields.get(name, 0.0)) for name in USAGE_FIELDS},
            "calls": {name: _number(count) for name, count in sorted(bucket.calls.items())}}


def _sum(views: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    out = _zero()
    for view in views:
        for name in COUNTERS:
            out[name] = _number(out[name] + view[name])
        for name, count in view["calls"].items():
            out["calls"][name] = _number(out["calls"].get(name, 0) + count)
    out["calls"] = dict(sorted(out["calls"].items()))
    return out


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 6)


# -- budgets ----------------------------------------------------------------------------------------------------


@blueprint.get("/tenants/<tenant_id>/budgets")
async def get_budgets(tenant_id: str) -> Response:
    st = state()
    await require_tenant_admin(st, tenant_id)
    check_id(tenant_id, "tenant_id")
    return json_response(_budgets_view(tenant_id, await st.registry.get_budgets(tenant_id)))


@blueprint.put("/tenants/<tenant_id>/budgets")
async def set_budgets(tenant_id: str) -> Response:
    """Replace the tenant's budgets (global admin): ``{"budgets": [{"name", "period", "limit"}]}``."""
    st = state()
    await require_global_admin(st)
    check_id(tenant_id, "tenant_id")
    budgets = _read_budgets(await read_json(request))
    if st.usage is not None:
        await st.usage.flush()  # the usage so far is in the registry, where the new counters start from
    try:
        stored = await st.registry.set_budgets(tenant_id, budgets)
    except RecordNotFound:
        raise NotFound("tenant_not_found", "no such tenant") from None
    if st.budgets is not None:
        st.budgets.forget(tenant_id)
    return json_response(_budgets_view(tenant_id, stored))


def _read_budgets(data: object) -> list[Budget]:
    body = parse_body(BudgetsReplace, data)
    errors: dict[str, str] = {}
    budgets: dict[tuple[str, str], Budget] = {}
    for index, item in enumerate(body.budgets):
        if (item.name, item.period) in budgets:
            errors[f"budgets[{index}]"] = f"duplicates another {item.name} budget per {item.period}"
        else:
            budgets[(item.name, item.period)] = Budget(item.name, item.period, float(item.limit))
    if errors:
        raise InvalidRequest(errors)
    return list(budgets.values())


def _budgets_view(tenant_id: str, budgets: Iterable[Budget]) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "budgets": [
        {"name": b.name, "period": b.period, "limit": _number(b.limit), "period_s": PERIOD_SECONDS[b.period]}
        for b in budgets]}


# -- least privilege --------------------------------------------------------------------------------------------


@blueprint.get("/tenants/<tenant_id>/installs/<extension_id>/privileges")
async def privileges(tenant_id: str, extension_id: str) -> Response:
    """Per granted capability: the host calls made with it in the last N days; unused grants to remove."""
    st = state()
    await require_tenant_admin(st, tenant_id)
    check_id(extension_id, "extension_id")
    raw = request.args.get("days", str(DEFAULT_PRIVILEGE_DAYS))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PRIVILEGE_DAYS:
        raise InvalidRequest({"days": f"must be an integer in 1..{MAX_PRIVILEGE_DAYS}"})
    days = int(raw)
    try:
        install = await st.registry.get_install(tenant_id, extension_id)
    except RecordNotFound:
        raise NotFound("not_installed", "the extension is not installed for this tenant") from None
    end = _floor_minute(datetime.now(UTC)) + timedelta(minutes=1)
    start = end - timedelta(days=days)
    if st.usage is not None:
        await st.usage.flush()
    buckets = await st.registry.usage_buckets(tenant_id, start=_rfc3339(start), end=_rfc3339(end),
                                              extension_id=extension_id, granularity="day")
    totals = _sum(_view(b) for b in buckets)
    calls: dict[str, float] = totals["calls"]
    report = [_privilege(cap, calls) for cap in install.granted_capabilities]
    unused = [r["capability"] for r in report if r["calls"] == 0 and r["capability"] not in bundles.ALWAYS_GRANTED]
    return json_response({
        "tenant_id": tenant_id,
        "extension_id": extension_id,
        "days": days,
        "from": _rfc3339(start),
        "to": _rfc3339(end),
        "invocations": totals["invocations"],
        "requested": list(st.manifests.get(install.version).capabilities),
        "capabilities": report,
        "unused": unused,
        "suggestion": (f"remove {', '.join(unused)}: granted but not used in {days} days "
                       "(PUT .../capabilities with the rest)") if unused else None,
    })


def _privilege(capability: str, calls: Mapping[str, float]) -> dict[str, Any]:
    names = {capability, capability.removeprefix("cap:"), *CAPABILITY_INTERFACES.get(capability, ())}
    count = _number(sum(calls.get(name, 0) for name in names))
    return {"capability": capability, "granted": True, "calls": count, "used": count > 0,
            "always_granted": capability in bundles.ALWAYS_GRANTED}
