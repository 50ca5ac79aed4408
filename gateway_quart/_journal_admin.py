"""Admin API, part three: the invocation journal of a tenant — policies, entries, replay, upgrade checks, settings.

Tenant admins see their own tenant only; the gateway admin token any. An entry of another tenant is answered
exactly like a missing one (404 ``journal_entry_not_found``), whichever tenant the path names. Entries are read
from the journal store with ``GATEWAY_JOURNAL_KEYS`` (the runners' keys); replays run on a runner
(``POST /v1/replay``), which answers from the journal and touches nothing real. What the upgrade gate
requires of a check is in :mod:`._journal_gate`.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final

import trio
from quart import Blueprint, Response, request

import bundles
import journal
from bundles.store import BundleStore
from contract import parse_journal_policy

from ._bodies import (
    DEFAULT_UPGRADE_CHECK_ENTRIES,
    JournalPolicySet,
    ReplayRequest,
    TenantSettingsUpdate,
    UpgradeCheckRequest,
)
from ._errors import ApiError, InvalidRequest, NotFound, RecordNotFound
from ._journal_gate import REQUIRE_UPGRADE_CHECK
from ._journal_index import DeleteObject
from ._rules import parse_body
from ._settings import Settings
from ._state import GatewayState, state
from ._validation import ID_PATTERN, check_id, read_json
from ._views import admin_principal, check_tenant_admin, install_view, json_response, require_tenant_admin
from .registry import Install, JournalIndexEntry, UpgradeCheck, Version, new_id, utc_now

log = logging.getLogger("gateway_quart.journal")

DEFAULT_LIST_LIMIT: Final = 100
MAX_LIST_LIMIT: Final = 1000
UPGRADE_CHECK_CONCURRENCY: Final = 4
"""Replays of one upgrade check running at once (each occupies a runner slot)."""
REPLAY_GRACE_S: Final = 30.0
"""Time a replay gets beyond the extension call deadline (it also loads the bundle)."""
FAILING_VERDICTS: Final = frozenset({"calls_differ", "new_failure", "error"})
"""Verdicts that fail an upgrade check (``response_differs`` is reported, not failing: see docs/journal.md)."""
VERDICT_ORDER: Final = ("identical", "response_differs", "calls_differ", "new_failure", "error")

blueprint = Blueprint("journal", __name__, url_prefix="/api/v1/tenants/<tenant_id>")


def open_reader(settings: Settings, store: BundleStore | None) -> journal.JournalReader | None:
    """The reader of sealed entries, when the gateway holds the keys and a store."""
    if settings.journal_keys is None or store is None:
        return None
    return journal.JournalReader(store, settings.journal_keys, prefix=settings.journal_prefix)


def object_deleter(settings: Settings, store: BundleStore | None) -> DeleteObject | None:
    """How the retention sweeper removes an entry's object (``None``: no store, rows only)."""
    if store is None:
        return None
    prefix = settings.journal_prefix

    async def delete(entry: JournalIndexEntry) -> None:
        # Deleting needs no key: the object's name is enough (JournalReader.delete does the same).
        try:
            key = journal.entry_key(entry.tenant_id, entry.extension_id, entry.id, prefix=prefix)
        except ValueError:
            return  # ids no object can be named by: only the row goes
        await store.delete(key)

    return delete


def entry_view(entry: JournalIndexEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "tenant_id": entry.tenant_id,
        "extension_id": entry.extension_id,
        "install_id": entry.install_id,
        "content_hash": f"sha256:{entry.content_hash}",
        "request_id": entry.request_id,
        "outcome": entry.outcome,
        "status": entry.status,
        "recorded_at": entry.recorded_at,
        "expires_at": entry.expires_at,
    }


async def _tenant(st: GatewayState, tenant_id: str) -> None:
    await require_tenant_admin(st, tenant_id)
    try:
        await st.registry.get_tenant(tenant_id)
    except RecordNotFound:
        raise NotFound("tenant_not_found", "no such tenant") from None


async def _install(st: GatewayState, tenant_id: str, extension_id: str) -> Install:
    await require_tenant_admin(st, tenant_id)
    check_id(extension_id, "extension_id")
    try:
        return await st.registry.get_install(tenant_id, extension_id)
    except RecordNotFound:
        raise NotFound("not_installed", "the extension is not installed for this tenant") from None


async def _entry(st: GatewayState, tenant_id: str, entry_id: str) -> JournalIndexEntry:
    """The tenant's indexed entry; any other (another tenant's, malformed, missing) is the same 404."""
    principal = await admin_principal(st)
    if principal is not None:
        if principal.tenant_id != tenant_id:
            raise _no_entry()
        check_tenant_admin(principal, tenant_id)
    if ID_PATTERN.fullmatch(entry_id) and st.journal_index is not None:
        await st.journal_index.flush()  # an entry answered a moment ago is still being indexed
    try:
        if ID_PATTERN.fullmatch(entry_id):
            return await st.registry.get_journal_entry(tenant_id, entry_id)
    except RecordNotFound:
        pass
    raise _no_entry()


def _no_entry() -> NotFound:
    return NotFound("journal_entry_not_found", "no such journal entry")


def _version_hash(raw: str, field: str) -> str:
    try:
        return bundles.parse_content_hash(raw)
    except ValueError:
        raise InvalidRequest({field: "must be sha256: followed by 64 hex digits"}) from None


async def _version(st: GatewayState, extension_id: str, hex_hash: str) -> Version:
    version = await st.registry.find_version(extension_id, hex_hash)
    if version is None:
        raise NotFound("version_not_found", "that content hash is not registered for this extension")
    return version


@blueprint.put("/installs/<extension_id>/journal")
async def set_policy(tenant_id: str, extension_id: str) -> Response:
    st = state()
    await _install(st, tenant_id, extension_id)
    raw = parse_body(JournalPolicySet, await read_json(request)).policy
    try:
        policy = parse_journal_policy(raw)
    except ValueError as exc:
        raise InvalidRequest({"policy": str(exc)}) from None
    install = await st.registry.set_journal_policy(tenant_id, extension_id, str(policy))
    return json_response(install_view(install, st))


@blueprint.get("/journal")
async def list_entries(tenant_id: str) -> Response:
    st = state()
    await _tenant(st, tenant_id)
    args = request.args
    errors: dict[str, str] = {}
    raw_limit = args.get("limit", str(DEFAULT_LIST_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIST_LIMIT:
        errors["limit"] = f"must be an integer in 1..{MAX_LIST_LIMIT}"
    extension = args.get("extension") or None
    if extension is not None and not ID_PATTERN.fullmatch(extension):
        errors["extension"] = "must be an extension id"
    outcome = args.get("outcome") or None
    if outcome is not None and not ID_PATTERN.fullmatch(outcome):
        errors["outcome"] = "must be an outcome word (ok, timeout, trap…)"
    if errors:
        raise InvalidRequest(errors)
    if st.journal_index is not None:
        await st.journal_index.flush()
    entries = await st.registry.list_journal_entries(tenant_id, extension_id=extension, outcome=outcome,
                                                     limit=int(raw_limit))
    return json_response({"entries": [entry_view(e) for e in entries]})


@blueprint.get("/journal/<entry_id>")
async def get_entry(tenant_id: str, entry_id: str) -> Response:
    """The decrypted entry document (``alga-journal/1``); secret values are never in it (names only)."""
    st = state()
    entry = await _entry(st, tenant_id, entry_id)
    if st.journal_reader is None:
        raise ApiError("journal_unavailable", "GATEWAY_JOURNAL_KEYS (or a journal store) is not set", status=503)
    try:
        doc = await st.journal_reader.read(entry.tenant_id, entry.extension_id, entry.id)
    except journal.JournalNotFound:
        raise NotFound("journal_entry_not_found", "the entry is not in the journal store: runners write it "
                       "moments after the call, and it expires") from None
    except journal.JournalKeyError:
        raise ApiError("journal_unavailable", "the entry is sealed with a key GATEWAY_JOURNAL_KEYS does not hold",
                       status=503) from None
    except journal.JournalCorrupt:
        raise ApiError("journal_corrupt", "the stored entry does not open", status=500) from None
    except journal.JournalError as exc:
        log.error("journal entry %s unreadable: %s", entry.id, exc)
        raise ApiError("journal_unavailable", "the journal store failed", status=503) from None
    response = json_response(doc)
    response.headers["content-disposition"] = f'attachment; filename="journal-{entry.id}.json"'
    return response


async def _replay(st: GatewayState, entry: JournalIndexEntry, to_hash: str | None) -> dict[str, Any]:
    """Run the entry again on a runner; the report (``verdict``, ``divergence``, ``response_diff``…).

    Raises:
        ApiError: the runner refused (its code: 404 ``journal_entry_not_found``, 400…), or no runner answered.
    """
    body: dict[str, Any] = {"tenant_id": entry.tenant_id, "extension_id": entry.extension_id, "entry_id": entry.id}
    if to_hash is not None:
        body["content_hash"] = f"sha256:{to_hash}"
    status, answer = await st.runner.replay(body, timeout_s=st.settings.timeout_ms / 1000 + REPLAY_GRACE_S)
    if status == 200 and isinstance(answer, dict) and isinstance(answer.get("verdict"), str):
        return {"entry_id": entry.id, "content_hash": f"sha256:{to_hash or entry.content_hash}", **answer}
    code = answer.get("error") if isinstance(answer, dict) else None
    if status == 404:
        raise NotFound("journal_entry_not_found", "the runner found no such entry (expired?)")
    if status == 503 and code == "journal_disabled":
        raise ApiError("journal_unavailable", "the runner holds no journal keys (RUNNER_JOURNAL_KEYS)", status=503)
    if status in (400, 409, 422) and isinstance(code, str) and ID_PATTERN.fullmatch(code):
        # 422: the entry is there but cannot be replayed (its request does not decode): a conflict, not a typo.
        message = answer.get("message") if isinstance(answer, dict) else None
        raise ApiError(code, message if isinstance(message, str) else None, status=400 if status == 400 else 409)
    if status == 502 and isinstance(code, str) and ID_PATTERN.fullmatch(code):
        # The runner's own failure (bundle_fetch_failed: the bundle to replay against could not be loaded).
        message = answer.get("message") if isinstance(answer, dict) else None
        raise ApiError(code, message if isinstance(message, str) else None, status=502)
    hint = " (check RUNNER_SERVICE_TOKEN)" if status in (401, 403) else ""
    log.error("runner answered HTTP %d to a replay of %s%s", status, entry.id, hint)
    raise ApiError("bad_gateway", "the runner could not replay the entry", status=502)


@blueprint.post("/journal/<entry_id>/replay")
async def replay(tenant_id: str, entry_id: str) -> Response:
    st = state()
    entry = await _entry(st, tenant_id, entry_id)
    raw = parse_body(ReplayRequest, await read_json(request)).content_hash
    to_hash = None
    if raw is not None:
        to_hash = _version_hash(raw, "content_hash")
        await _version(st, entry.extension_id, to_hash)  # only registered versions of this extension
    return json_response(await _replay(st, entry, to_hash))


def _check_row(entry: JournalIndexEntry, tenant_id: str, report: dict[str, Any] | None,
               error: ApiError | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "entry_id": entry.id,
        "recorded_at": entry.recorded_at,
        "request_id": entry.request_id,
        "outcome": entry.outcome,
        "link": f"/api/v1/tenants/{tenant_id}/journal/{entry.id}",
    }
    if report is None:
        assert error is not None
        return {**row, "verdict": "error", "error": error.code}
    return {**row, "verdict": report["verdict"], "divergence": report.get("divergence"),
            "response_diff": report.get("response_diff") or [], "calls_replayed": report.get("calls_replayed")}


@blueprint.post("/installs/<extension_id>/upgrade-check")
async def upgrade_check(tenant_id: str, extension_id: str) -> Response:
    """Replay the last recorded invocations of the installed version against ``to``; store and answer the table."""
    st = state()
    install = await _install(st, tenant_id, extension_id)
    body = parse_body(UpgradeCheckRequest, await read_json(request))
    to_hash = _version_hash(body.to, "to")
    await _version(st, extension_id, to_hash)
    if st.journal_index is not None:
        await st.journal_index.flush()
    from_hash = install.version.content_hash
    entries = await st.registry.list_journal_entries(tenant_id, extension_id=extension_id, content_hash=from_hash,
                                                     limit=body.last or DEFAULT_UPGRADE_CHECK_ENTRIES)
    rows: list[dict[str, Any] | None] = [None] * len(entries)
    limiter = trio.CapacityLimiter(UPGRADE_CHECK_CONCURRENCY)

    async def one(index: int, entry: JournalIndexEntry) -> None:
        async with limiter:
            try:
                rows[index] = _check_row(entry, tenant_id, await _replay(st, entry, to_hash), None)
            except ApiError as exc:
                rows[index] = _check_row(entry, tenant_id, None, exc)

    async with trio.open_nursery() as nursery:
        for index, entry in enumerate(entries):
            nursery.start_soon(one, index, entry)
    table = [row for row in rows if row is not None]
    summary = {verdict: 0 for verdict in VERDICT_ORDER}
    for row in table:
        summary[row["verdict"]] = summary.get(row["verdict"], 0) + 1
    summary["total"] = len(table)
    passed = bool(table) and not any(summary.get(verdict, 0) for verdict in FAILING_VERDICTS)
    check = UpgradeCheck(new_id(), tenant_id, extension_id, from_hash, to_hash, passed, "", utc_now())
    answer = {
        "id": check.id, "tenant_id": tenant_id, "extension_id": extension_id,
        "from": f"sha256:{from_hash}", "to": f"sha256:{to_hash}", "passed": passed,
        "summary": summary, "entries": table, "created_at": check.created_at,
    }
    await st.registry.record_upgrade_check(
        UpgradeCheck(check.id, tenant_id, extension_id, from_hash, to_hash, passed,
                     json.dumps(answer, separators=(",", ":")), check.created_at)
    )
    return json_response(answer)


def settings_view(settings: dict[str, Any]) -> dict[str, Any]:
    return {**settings, REQUIRE_UPGRADE_CHECK: bool(settings.get(REQUIRE_UPGRADE_CHECK, False))}


@blueprint.get("/settings")
async def get_settings(tenant_id: str) -> Response:
    st = state()
    await _tenant(st, tenant_id)
    return json_response(settings_view(await st.registry.get_tenant_settings(tenant_id)))


@blueprint.put("/settings")
async def put_settings(tenant_id: str) -> Response:
    st = state()
    await _tenant(st, tenant_id)
    body = parse_body(TenantSettingsUpdate, await read_json(request))
    changes: dict[str, Any] = {}
    if body.require_upgrade_check is not None:
        changes[REQUIRE_UPGRADE_CHECK] = body.require_upgrade_check
    settings = await st.registry.update_tenant_settings(tenant_id, changes)
    return json_response(settings_view(settings))
