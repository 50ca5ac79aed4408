"""One ``/v1/execute`` from a validated request to its result: bundle, admission, secrets, guest, outcome.

The HTTP route only authenticates and parses; everything an invocation goes through is here, in order, so a
reader can follow a request from top to bottom. Every failure becomes an ``ExecuteResult`` carrying the
contract's status and error code, and every invocation is counted under exactly one ``outcome``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Awaitable, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Final

import trio

from bundles import ALWAYS_GRANTED, Manifest, ManifestError
from cache import CacheError
from servicekit import child_span, tracer

from ._config import MIB, Settings
from ._errors import (
    BodyTooLarge,
    BodyTooLargeForMemory,
    BundleUnavailable,
    ExecuteFailed,
    Overloaded,
    RunnerError,
    SecretDecryptFailed,
)
from ._journal import Recording
from ._runtime import Runtime
from ._usage import measure_usage
from ._wire import ExecuteRequest, ExecuteResult, RequestContext
from .capabilities import InvocationInputs, SecretEnvelopeError
from .engine import (
    CallReplayer,
    EventSink,
    GuestError,
    GuestRequest,
    Invocation,
    InvocationContext,
    InvocationCounters,
    UserInfo,
    invoke,
)

__all__ = ["JournalTap", "Timing", "execute", "outcome_of", "remember_result", "run_invocation"]

log = logging.getLogger("runner_trio.execute")
_TRACER = tracer("runner_trio")

# Outcome label of each failure, for runner_invocations_total{outcome}.
_OUTCOME_OF_KIND: Final = {"timeout": "timeout", "memory_limit": "memory", "trap": "trap", "link": "trap"}
_RESPONSE_HEADER_LIMIT: Final = 256
BODY_MEMORY_THRESHOLD: Final = 64 * 1024
"""A guest that hits its memory cap with a request body at least this large is answered
``body_too_large_for_memory`` (413, naming ``limits.memory_mb``) instead of ``execute_failed: memory_limit``."""


@dataclass
class Timing:
    """Where one invocation's time went, in seconds; the route sends it as ``server-timing``.

    ``load``: getting the compiled component (fetch, verify, compile, or waiting for the request doing that) and
    pinning the bundle; ``queue``: waiting for an admission slot; ``guest``: opening secrets and running the guest.
    """

    load: float = 0.0
    queue: float = 0.0
    guest: float = 0.0

    def phases(self) -> dict[str, float]:
        """``{"load", "queue", "guest"}`` in seconds (an entry's ``timing``)."""
        return {"load": self.load, "queue": self.queue, "guest": self.guest}

    def server_timing(self) -> str:
        """``queue;dur=<ms>, load;dur=<ms>, guest;dur=<ms>`` (the Server-Timing header's grammar)."""
        phases = (("queue", self.queue), ("load", self.load), ("guest", self.guest))
        return ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in phases)


@dataclass
class JournalTap:
    """How an invocation meets the journal: recorded (``recording``), or replayed from a record (``replayer``,
    with the recorded ``grants``: no secrets opened, no events published)."""

    recording: Recording | None = None
    replayer: CallReplayer | None = None
    grants: frozenset[str] | None = None


async def execute(runtime: Runtime, request: ExecuteRequest, timing: Timing | None = None) -> ExecuteResult:
    """Run one invocation and return what ``/v1/execute`` answers; never raises for a guest or bundle fault.

    ``limits.timeout_ms`` is the whole invocation's deadline, counted from here: loading the bundle and waiting
    for a slot spend it, and the guest gets what is left. ``timing`` (when given) is filled in as it goes.
    """
    metrics = runtime.metrics
    ctx = request.context
    outcome = "ok"
    started = trio.current_time()
    events = runtime.events.for_invocation(request.context)
    timing = timing if timing is not None else Timing()
    counters = InvocationCounters()
    recording = _recording(runtime, request)
    tap = JournalTap(recording=recording) if recording is not None else None
    try:
        result = await run_invocation(runtime, request, events.emit, started, timing, counters, tap)
    except RunnerError as exc:
        outcome = outcome_of(exc)
        if not isinstance(exc, Overloaded):
            events.emit("error", "log", f"runner: {exc.wire_error}{_detail(exc)}")
        log.info(
            "invocation failed tenant=%s extension=%s request=%s hash=%s error=%s",
            ctx.tenant_id, ctx.extension_id, ctx.request_id, ctx.content_hash, exc.wire_error,
        )
        result = ExecuteResult(status=exc.status_code, headers={}, body=None, error=exc.wire_error)
    # What the guest used, when it started (a failure before that used nothing worth billing).
    usage = measure_usage(counters, memory_mb=_memory_mb(runtime.settings, request), debug_events=events.emitted)
    if usage is not None:
        result = dataclasses.replace(result, usage=usage)
        metrics.record_usage(ctx.tenant_id, ctx.extension_id, usage)
    metrics.count_invocation(outcome, trio.current_time() - started)
    if recording is not None and runtime.journal is not None:
        result = runtime.journal.finish(recording, request, result, outcome=outcome, timing=timing.phases())
    return result


def _recording(runtime: Runtime, request: ExecuteRequest) -> Recording | None:
    """A recording when the request's journal policy may want this invocation (``errors`` needs its outcome)."""
    policy = request.journal
    if policy is None or policy.mode == "off":
        return None
    if runtime.journal is None:
        runtime.journal_unconfigured()
        return None
    return runtime.journal.start()


def remember_result(result: ExecuteResult) -> bool:
    """Whether an idempotency key should replay this result: only when the guest ran (or tried to)."""
    if result.error is None:
        return True
    return result.error.startswith("execute_failed")


async def run_invocation(
    runtime: Runtime,
    request: ExecuteRequest,
    emit: EventSink,
    started: float,
    timing: Timing,
    counters: InvocationCounters,
    tap: JournalTap | None = None,
) -> ExecuteResult:
    """The invocation itself (bundle, admission, guest), raising :class:`RunnerError` for every failure.

    ``tap`` records it, or replays it (then a divergence from the record raises ``ReplayDivergence``).
    """
    settings = runtime.settings
    ctx = request.context
    given_ms = request.limits.timeout_ms
    # A caller that sends limits.timeout_ms has a deadline: loading and queueing spend it, the guest gets what is
    # left. One that sends none has no deadline, only the default guest limit (loading and queueing are bounded
    # by their own limits). RUNNER_MAX_TIMEOUT_MS caps the guest either way: it protects the slots, not callers.
    deadline = started + given_ms / 1000 if given_ms else math.inf
    timeout_s = min(given_ms or settings.default_timeout_ms, settings.max_timeout_ms) / 1000
    # The warm path (the bundle fetched, checked and compiled by an earlier invocation) takes nothing to await.
    warm = runtime.bundles.pin_warm(ctx.content_hash)
    if warm is not None:
        try:
            return await _admitted(runtime, request, warm.component, warm.manifest, emit, timing, counters, tap,
                                   started=started, deadline=deadline, timeout_s=timeout_s)
        finally:
            await runtime.bundles.unpin(warm.entry)
    async with AsyncExitStack() as stack:
        # The bundle first, holding no slot: a compile takes seconds, and requests queueing behind slots held
        # by waiting ones would be refused as overloaded. The wait is the request's to bound; the load itself
        # is shared and goes on for the others (see BundleService.load).
        try:
            with trio.move_on_at(deadline) as loading:
                component, manifest = await _load(runtime, ctx, stack)
        finally:
            timing.load = trio.current_time() - started
        if loading.cancelled_caught:
            raise ExecuteFailed("timeout", "the deadline passed while loading the bundle")
        return await _admitted(runtime, request, component, manifest, emit, timing, counters, tap,
                               started=started, deadline=deadline, timeout_s=timeout_s)


async def _admitted(
    runtime: Runtime,
    request: ExecuteRequest,
    component: Any,
    manifest: Manifest,
    emit: EventSink,
    timing: Timing,
    counters: InvocationCounters,
    tap: JournalTap | None,
    *,
    started: float,
    deadline: float,
    timeout_s: float,
) -> ExecuteResult:
    """The guest of a loaded bundle, in an admission slot (``timing.load`` ends here, at the latest)."""
    ctx = request.context
    queued = trio.current_time()
    timing.load = queued - started
    slot = runtime.admission.slot(ctx.tenant_id, ctx.extension_id, deadline=deadline,
                                  memory_mb=_memory_mb(runtime.settings, request))
    try:
        await slot.__aenter__()
    except Overloaded:
        if trio.current_time() >= deadline:
            raise ExecuteFailed("timeout", "the deadline passed while waiting for a slot") from None
        raise
    finally:
        timing.queue = trio.current_time() - queued
    inflight = runtime.metrics.inflight
    running = trio.current_time()
    inflight.inc()
    try:
        if tap is not None and tap.grants is not None:
            grants = tap.grants  # a replay: what the recorded invocation had
        else:
            grants = _grants(request.providers, frozenset(manifest.capabilities), emit)
        if tap is not None and tap.recording is not None:
            tap.recording.grants = grants
        return await _guest(
            runtime, request, component, grants, emit, counters, tap, deadline=deadline, timeout_s=timeout_s,
            declared=manifest,
        )
    finally:
        timing.guest = trio.current_time() - running
        inflight.dec()
        await slot.__aexit__(None, None, None)


async def _load(runtime: Runtime, ctx: RequestContext, stack: AsyncExitStack) -> tuple[Any, Manifest]:
    """The compiled component and the bundle's manifest (what it asks for), with the bundle's cache entry pinned
    on ``stack`` until the invocation ends."""
    key_context = _key_context(runtime, ctx.tenant_id, ctx.extension_id)
    component = await _compiled(runtime.bundles.load(ctx.content_hash, key_context=key_context))
    entry = await stack.enter_async_context(runtime.bundles.entry(ctx.content_hash, key_context=key_context))
    if component is None:
        component = await _compiled(runtime.bundles.component(entry))
    try:
        manifest = await runtime.bundles.manifest(entry)
    except (ManifestError, CacheError) as exc:  # verified at fetch: only a damaged cache gets here
        raise BundleUnavailable(f"invalid_manifest: {exc}") from exc
    return component, manifest


def _grants(providers: frozenset[str], asked: frozenset[str], emit: EventSink) -> frozenset[str]:
    """What the guest gets: the caller's ``providers`` that the bundle's manifest asks for, plus the always-granted.

    The manifest is signed with the bundle, the providers list is only what the caller says: a provider the
    manifest does not ask for is refused, and the refusal is told to the extension's debug stream.
    """
    refused = providers - asked - ALWAYS_GRANTED
    if refused:
        emit("warn", "log", "runner: providers not granted (the bundle's manifest does not ask for them): "
                            + ", ".join(sorted(refused)))
    return (providers & asked) | ALWAYS_GRANTED


async def _guest(
    runtime: Runtime,
    request: ExecuteRequest,
    component: Any,
    grants: frozenset[str],
    emit: EventSink,
    counters: InvocationCounters,
    tap: JournalTap | None,
    *,
    deadline: float,
    timeout_s: float,
    declared: Manifest | None = None,
) -> ExecuteResult:
    settings = runtime.settings
    replayer = tap.replayer if tap is not None else None
    recorder = tap.recording.calls if tap is not None and tap.recording is not None else None
    ctx = request.context
    memory_mb = _memory_mb(settings, request)
    invocation = Invocation(
        context=InvocationContext(
            tenant_id=ctx.tenant_id,
            extension_id=ctx.extension_id,
            request_id=ctx.request_id,
            install_id=ctx.install_id,
            version_id=ctx.version_id,
            content_hash=f"sha256:{ctx.content_hash}",
            config=dict(ctx.config),
            egress=declared.egress if declared is not None else None,
            secrets=declared.secrets if declared is not None else None,
        ),
        grants=grants,
        user=_user(request),
        # A replay publishes nothing: its output is the replayer's.
        events=emit if replayer is None else None,
        counters=counters,
        journal=replayer if replayer is not None else recorder,
    )
    if replayer is None:  # a replay opens no secrets: the record answers them
        invocation = await _prepare(runtime, request, invocation)
    guest_request = GuestRequest(
        method=request.http.method,
        url=request.http.url,
        headers=list(request.http.headers.items()),
        body=request.http.body,
    )
    left = min(timeout_s, deadline - trio.current_time())
    if left <= 0:
        # Loading and queueing spent the whole deadline: the guest never starts.
        raise ExecuteFailed("timeout", "no time left for the guest")
    if recorder is not None:
        recorder.begin()
    try:
        # The guest's span: the host calls it makes (engine.host_function) are its children.
        with child_span(_TRACER, "guest", {"extension.content_hash": f"sha256:{ctx.content_hash}"}):
            response = await invoke(
                runtime.engine,
                runtime.linker,
                component,
                guest_request,
                invocation,
                timeout=left,
                memory_bytes=memory_mb * MIB,
                limiter=runtime.guest_threads,
            )
    except GuestError as exc:
        body_bytes = len(request.http.body or b"")
        if exc.kind == "memory_limit" and body_bytes >= BODY_MEMORY_THRESHOLD:
            # The cap hit is the runner's own observation (never the guest's words); with a body this size,
            # the body is the likely reason, and the caller can act on limits.memory_mb.
            raise BodyTooLargeForMemory(body_bytes, memory_mb) from exc
        raise ExecuteFailed(exc.kind, str(exc), subject=exc.subject) from exc
    body = response.body
    if body is not None and len(body) > settings.max_response_body_bytes:
        raise ExecuteFailed("response", f"response body exceeds {settings.max_response_body_bytes} bytes")
    return ExecuteResult(status=response.status, headers=_headers(response.headers), body=body)


def _memory_mb(settings: Settings, request: ExecuteRequest) -> int:
    """The invocation's memory cap: what it asks for, else the default, never past the maximum."""
    return min(request.limits.memory_mb or settings.default_memory_mb, settings.max_memory_mb)


async def _compiled(work: Awaitable[Any]) -> Any:
    try:
        return await work
    except RunnerError:
        raise
    except Exception as exc:
        # A component that does not compile for this engine is a broken bundle, not a runner fault.
        raise BundleUnavailable(f"compile_failed: {exc}") from exc


async def _prepare(runtime: Runtime, request: ExecuteRequest, invocation: Invocation) -> Invocation:
    # The capabilities' per-invocation state; today that is opening the secret envelope.
    try:
        return await runtime.prepare(invocation, InvocationInputs(secret_envelope=request.secret_envelope))
    except SecretEnvelopeError as exc:
        raise SecretDecryptFailed(exc.code) from exc


def _user(request: ExecuteRequest) -> UserInfo | None:
    user = request.user
    if user is None:
        return None
    return UserInfo(
        user_id=user.user_id,
        user_email=user.user_email,
        user_name=user.user_name,
        user_type=user.user_type,
        client_name=user.client_name,
        client_id=user.client_id,
        additional_fields=tuple(user.additional_fields.items()),
    )


def _headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in list(pairs)[:_RESPONSE_HEADER_LIMIT]:
        key = str(name).lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else str(value)
    return headers


def _key_context(runtime: Runtime, tenant: str, extension: str) -> Mapping[str, str]:
    wanted = runtime.bundles.layout_fields
    values = {"tenant": tenant, "extension": extension}
    return {name: values[name] for name in wanted if name in values}


def outcome_of(exc: RunnerError) -> str:
    """The ``outcome`` label of an invocation that failed with ``exc``."""
    if isinstance(exc, ExecuteFailed):
        return _OUTCOME_OF_KIND.get(exc.kind, "trap")
    if isinstance(exc, Overloaded):
        return "overloaded"
    if isinstance(exc, BundleUnavailable):
        return "bundle_error"
    if isinstance(exc, SecretDecryptFailed):
        return "denied"
    if isinstance(exc, BodyTooLargeForMemory):
        return "memory"
    if isinstance(exc, BodyTooLarge):
        return "bad_request"
    return "bad_request" if exc.status_code < 500 else "trap"


def _detail(exc: RunnerError) -> str:
    message = getattr(exc, "message", "")
    return f" ({message})" if message else ""
