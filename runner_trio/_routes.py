"""The runner's HTTP API (thin): authenticate, parse, hand over to ``_execute``, shape the answer.

- ``POST /v1/execute``  — the reference runner's contract (always HTTP 200 with ``{status, headers,
  body_b64, error}``), except malformed JSON or fields (HTTP 400 naming the field) and a missing service
  token (HTTP 401);
- ``POST /v1/warmup``   — fetch, verify and precompile a bundle ahead of traffic;
- ``POST /v1/replay``   — replay an invocation journal entry (against its bundle or another) and report;
- ``GET /healthz``, ``GET /readyz``, ``GET /metrics``.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import uuid
from typing import Any, Final

import trio
from quart import Blueprint, Response, current_app, request

import journal
from contract import (
    ContentHashError,
    ContractError,
    ErrorCode,
    encode_execute_result,
    format_content_hash,
    is_safe_id,
    load_json,
    parse_content_hash,
)
from servicekit import new_request_id, server_span, tracer

from ._errors import BodyTooLarge, RequestInvalid, RunnerError, UnknownCapabilities
from ._execute import Timing, execute, remember_result
from ._metrics import CONTENT_TYPE
from ._replay import ReplayInputError, replay_entry
from ._runtime import Runtime
from ._wire import ExecuteRequest, ExecuteResult, parse_execute_json
from .idempotency import IdempotencyError, StoreUnavailable, request_fingerprint

__all__ = ["api"]

api = Blueprint("runner_api", __name__)

log = logging.getLogger("runner_trio.routes")
_TRACER = tracer("runner_trio")

_REQUEST_ID_MAX: Final = 128
_WARMUP_MAX_BYTES: Final = 4096
_REPLAY_MAX_BYTES: Final = 4096


def runtime() -> Runtime:
    value: Runtime = current_app.extensions["runner_runtime"]
    return value


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload), status=status, headers=headers, content_type="application/json")


def _authorized() -> bool:
    token = runtime().settings.service_token
    if token is None:
        return True
    expected = token.encode()
    # The reference gateway sends the token as x-runner-service-token; ours as a bearer token.
    service_header = request.headers.get("x-runner-service-token")
    if service_header is not None and hmac.compare_digest(service_header.strip().encode(), expected):
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)


@api.before_request
async def _require_token() -> Response | None:
    if request.path.startswith("/v1/") and not _authorized():
        message = "Authorization: Bearer <RUNNER_SERVICE_TOKEN> (or x-runner-service-token) required"
        return _json({"error": ErrorCode.UNAUTHORIZED, "message": message}, 401, {"www-authenticate": "Bearer"})
    return None


def _request_id(doc_request_id: str | None) -> str:
    given = doc_request_id or request.headers.get("x-request-id", "")
    given = given.strip()
    if given and len(given) <= _REQUEST_ID_MAX and given.isprintable():
        return given
    return new_request_id()


@api.post("/v1/execute")
async def execute_route() -> Response:
    rt = runtime()
    tenant = request.headers.get("x-alga-tenant", "").strip()
    extension = request.headers.get("x-alga-extension", "").strip()
    if not tenant or not extension:
        missing = [h for h, v in (("x-alga-tenant", tenant), ("x-alga-extension", extension)) if not v]
        result = ExecuteResult.failure(400, ErrorCode.MISSING_ROUTING_HEADERS, ", ".join(missing))
        return _json(encode_execute_result(result))
    raw = await request.get_data(cache=False)
    try:
        parsed = parse_execute_json(raw, max_body_bytes=rt.settings.max_request_body_bytes)
    except RequestInvalid as exc:
        return _json({"error": ErrorCode.INVALID_REQUEST, "field": exc.field, "message": exc.message}, 400)
    except (UnknownCapabilities, BodyTooLarge) as exc:
        return _json(encode_execute_result(ExecuteResult(exc.status_code, {}, None, exc.wire_error)))
    ctx = parsed.context
    if ctx.tenant_id.lower() != tenant.lower() or ctx.extension_id.lower() != extension.lower():
        detail = "x-alga-tenant/x-alga-extension disagree with context"
        return _json(encode_execute_result(ExecuteResult.failure(400, ErrorCode.ROUTING_MISMATCH, detail)))
    request_id = _request_id(ctx.request_id)
    if request_id != ctx.request_id:  # the gateway sends one: then the parsed request stays as it is
        parsed = dataclasses.replace(parsed, context=dataclasses.replace(ctx, request_id=request_id))

    timing = Timing()
    key = request.headers.get("x-idempotency-key", "").strip()
    attributes = {"tenant.id": ctx.tenant_id, "extension.id": ctx.extension_id,
                  "extension.content_hash": f"sha256:{ctx.content_hash}", "request.id": request_id}
    with server_span(_TRACER, "POST /v1/execute", request.headers, attributes) as span:
        if key:
            result = await _run_keyed(rt, parsed, key, timing)
        else:
            result = await execute(rt, parsed, timing)
        span.set_attributes({"runner.outcome": result.error or "ok", "http.response.status_code": result.status,
                             "runner.queue_ms": round(timing.queue * 1000, 3),
                             "runner.load_ms": round(timing.load * 1000, 3),
                             "runner.guest_ms": round(timing.guest * 1000, 3)})
    # Where the time went (zeros for a replayed answer): queue, load and guest, in milliseconds.
    headers = {"x-request-id": request_id, "server-timing": timing.server_timing()}
    return _json(encode_execute_result(result), headers=headers)


async def _run_keyed(rt: Runtime, parsed: ExecuteRequest, key: str, timing: Timing) -> ExecuteResult:
    """``execute`` at most once per (tenant, extension, key), across runners sharing the idempotency store."""

    ran = False

    async def run() -> tuple[ExecuteResult, bool]:
        nonlocal ran
        ran = True
        result = await execute(rt, parsed, timing)
        return result, remember_result(result)

    settings = rt.settings
    ctx = parsed.context
    # A duplicate waits for the first run's result no longer than its own deadline would let it run.
    deadline_ms = min(parsed.limits.timeout_ms or settings.default_timeout_ms, settings.max_timeout_ms)
    try:
        before = rt.idempotency.replays
        result = await rt.idempotency.run((ctx.tenant_id, ctx.extension_id), key, request_fingerprint(parsed), run,
                                          deadline=deadline_ms / 1000)
        if rt.idempotency.replays != before:
            rt.metrics.idempotent_replays.inc()
        if not ran and result.usage is not None:
            # A replayed answer ran nothing here: its usage was counted (and billed) with the first run.
            result = dataclasses.replace(result, usage=None)
    except IdempotencyError as exc:
        log.warning("keyed request refused tenant=%s extension=%s request=%s error=%s (%s)",
                    ctx.tenant_id, ctx.extension_id, ctx.request_id, exc.code, exc)
        detail = str(exc) if isinstance(exc, StoreUnavailable) else None
        return ExecuteResult.failure(exc.status, exc.code, detail)
    return result


@api.post("/v1/warmup")
async def warmup_route() -> Response:
    rt = runtime()
    try:
        doc = load_json(await request.get_data(cache=False), max_bytes=_WARMUP_MAX_BYTES)
        content_hash = doc["content_hash"]
        if not isinstance(content_hash, str):
            raise TypeError
    except (ContractError, KeyError, TypeError):
        return _json({"error": ErrorCode.INVALID_REQUEST, "field": "content_hash", "message": "is required"}, 400)
    try:
        hex_digest = parse_content_hash(content_hash)
    except ContentHashError as exc:
        return _json({"error": ErrorCode.INVALID_REQUEST, "field": "content_hash", "message": str(exc)}, 400)
    started = trio.current_time()
    try:
        await rt.bundles.warm(hex_digest)
    except RunnerError as exc:
        return _json({"content_hash": format_content_hash(hex_digest), "error": exc.wire_error}, exc.status_code)
    return _json(
        {"content_hash": format_content_hash(hex_digest), "status": "ready",
         "seconds": round(trio.current_time() - started, 4)}
    )


def _replay_target(doc: Any) -> tuple[str, str, str, str | None]:
    """``(tenant, extension, entry, content_hash hex | None)`` of a ``/v1/replay`` body.

    Raises:
        RequestInvalid: a field is missing or malformed (``.field`` names it).
    """
    if not isinstance(doc, dict):
        raise RequestInvalid("$", "must be an object")
    ids: list[str] = []
    for name in ("tenant_id", "extension_id", "entry_id"):
        value = doc.get(name)
        if not isinstance(value, str) or not is_safe_id(value):
            raise RequestInvalid(name, "is required (an id)")
        ids.append(value)
    raw_hash = doc.get("content_hash")
    if raw_hash is None:
        return ids[0], ids[1], ids[2], None
    if not isinstance(raw_hash, str):
        raise RequestInvalid("content_hash", "must be a string")
    try:
        return ids[0], ids[1], ids[2], parse_content_hash(raw_hash)
    except ContentHashError as exc:
        raise RequestInvalid("content_hash", str(exc)) from None


@api.post("/v1/replay")
async def replay_route() -> Response:
    rt = runtime()
    try:
        tenant, extension, entry_id, content_hash = _replay_target(
            load_json(await request.get_data(cache=False), max_bytes=_REPLAY_MAX_BYTES)
        )
    except ContractError as exc:
        return _json({"error": ErrorCode.INVALID_REQUEST, "field": "$", "message": str(exc)}, 400)
    except RequestInvalid as exc:
        return _json({"error": ErrorCode.INVALID_REQUEST, "field": exc.field, "message": exc.message}, 400)
    service = rt.journal
    if service is None:
        return _json({"error": "journal_disabled", "message": "this runner has no RUNNER_JOURNAL_KEYS"}, 503)
    try:
        doc = await service.read(tenant, extension, entry_id)
    except journal.JournalNotFound:
        return _json({"error": "journal_entry_not_found", "entry_id": entry_id}, 404)
    except journal.JournalError as exc:
        log.warning("journal entry unreadable tenant=%s extension=%s entry=%s: %s", tenant, extension, entry_id,
                    type(exc).__name__)
        return _json({"error": "journal_entry_unreadable", "entry_id": entry_id,
                      "message": f"the entry does not open ({type(exc).__name__})"}, 422)
    if doc.get("tenant_id") != tenant or doc.get("extension_id") != extension:
        return _json({"error": "journal_entry_not_found", "entry_id": entry_id}, 404)
    try:
        report = await replay_entry(rt, doc, content_hash=content_hash)
    except ReplayInputError as exc:
        return _json({"error": exc.code, "entry_id": entry_id, "message": exc.message}, exc.status)
    return _json(report.to_json())


@api.get("/healthz")
async def healthz() -> Response:
    return _json({"status": "ok"})


@api.get("/readyz")
async def readyz() -> Response:
    rt = runtime()
    problems: dict[str, str] = {}
    try:
        with trio.fail_after(2):
            await rt.store.ping()
    except Exception as exc:
        problems["store"] = str(exc) or type(exc).__name__
    try:
        await trio.to_thread.run_sync(_check_writable, rt)
    except OSError as exc:
        problems["cache"] = str(exc)
    # Not ready before the disk is full: a runner below the floor fails its next uncached bundles.
    free, floor = await rt.disk.free_bytes(), rt.settings.cache_min_free_bytes
    if 0 <= free < floor:
        problems["cache_free_space"] = (
            f"cache disk low: {free} bytes free under {rt.disk.root}, below EXT_CACHE_MIN_FREE_BYTES={floor}"
        )
    if not rt.warmup.ready:
        problems["warmup"] = (f"warming: {rt.warmup.pending} of {len(rt.warmup.hashes)} bundles to go"
                              " (RUNNER_WARMUP_HASHES)")
    if problems:
        return _json({"status": "unavailable", "problems": problems}, 503)
    return _json({"status": "ready"})


def _check_writable(rt: Runtime) -> None:
    root = rt.settings.resolved_cache_root
    probe = root / f".ready-{uuid.uuid4().hex}"
    probe.write_bytes(b"ok")
    probe.unlink()


@api.get("/metrics")
async def metrics() -> Response:
    rt = runtime()
    if rt.journal is not None:
        rt.journal.sync_metrics()
    return Response(rt.metrics.render(), content_type=CONTENT_TYPE)
