"""One ``/v1/execute`` from a validated request to its result: admission, bundle, secrets, guest, outcome.

The HTTP route only authenticates and parses; everything an invocation goes through is here, in order, so a
reader can follow a request from top to bottom. Every failure becomes an ``ExecuteResult`` carrying the
contract's status and error code, and every invocation is counted under exactly one ``outcome``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final

import trio

from bundles import ALWAYS_GRANTED
from cache import CacheEntry

from ._config import MIB
from ._errors import (
    BodyTooLarge,
    BundleUnavailable,
    ExecuteFailed,
    Overloaded,
    RunnerError,
    SecretDecryptFailed,
)
from ._runtime import Runtime
from ._wire import ExecuteRequest, ExecuteResult
from .capabilities import InvocationInputs, SecretEnvelopeError
from .engine import EventSink, GuestError, GuestRequest, Invocation, InvocationContext, UserInfo, invoke

__all__ = ["execute", "remember_result"]

log = logging.getLogger("runner_trio.execute")

# Outcome label of each failure, for runner_invocations_total{outcome}.
_OUTCOME_OF_KIND: Final = {"timeout": "timeout", "memory_limit": "memory", "trap": "trap", "link": "trap"}
_RESPONSE_HEADER_LIMIT: Final = 256


async def execute(runtime: Runtime, request: ExecuteRequest) -> ExecuteResult:
    """Run one invocation and return what ``/v1/execute`` answers; never raises for a guest or bundle fault."""
    metrics = runtime.metrics
    ctx = request.context
    outcome = "ok"
    started = trio.current_time()
    events = runtime.events.for_invocation(request.context)
    try:
        async with runtime.admission.slot(ctx.tenant_id, ctx.extension_id):
            metrics.inflight.inc()
            try:
                result = await _run(runtime, request, events.emit)
            finally:
                metrics.inflight.dec()
    except RunnerError as exc:
        outcome = _outcome_of(exc)
        if not isinstance(exc, Overloaded):
            events.emit("error", "log", f"runner: {exc.wire_error}{_detail(exc)}")
        log.info(
            "invocation failed tenant=%s extension=%s request=%s hash=%s error=%s",
            ctx.tenant_id, ctx.extension_id, ctx.request_id, ctx.content_hash, exc.wire_error,
        )
        result = ExecuteResult(status=exc.status_code, headers={}, body=None, error=exc.wire_error)
    metrics.invocations.labels(outcome).inc()
    metrics.invocation_seconds.observe(trio.current_time() - started)
    return result


def remember_result(result: ExecuteResult) -> bool:
    """Whether an idempotency key should replay this result: only when the guest ran (or tried to)."""
    if result.error is None:
        return True
    return result.error.startswith("execute_failed")


async def _run(runtime: Runtime, request: ExecuteRequest, emit: EventSink) -> ExecuteResult:
    settings = runtime.settings
    ctx = request.context
    timeout_ms = min(request.limits.timeout_ms or settings.default_timeout_ms, settings.max_timeout_ms)
    memory_mb = min(request.limits.memory_mb or settings.default_memory_mb, settings.max_memory_mb)
    key_context = _key_context(runtime, ctx.tenant_id, ctx.extension_id)

    # limits.timeout_ms bounds the guest (instantiation and handler). Fetching and compiling a bundle are
    # bounded by their own timeouts and shared between concurrent requests, so one caller's short deadline
    # never cancels work another caller is waiting for.
    async with runtime.bundles.entry(ctx.content_hash, key_context=key_context) as entry:
        component = await _component(runtime, entry)
        invocation = Invocation(
            context=InvocationContext(
                tenant_id=ctx.tenant_id,
                extension_id=ctx.extension_id,
                request_id=ctx.request_id,
                install_id=ctx.install_id,
                version_id=ctx.version_id,
                content_hash=f"sha256:{ctx.content_hash}",
                config=dict(ctx.config),
            ),
            grants=frozenset(request.providers) | ALWAYS_GRANTED,
            user=_user(request),
            events=emit,
        )
        invocation = await _prepare(runtime, request, invocation)
        guest_request = GuestRequest(
            method=request.http.method,
            url=request.http.url,
            headers=list(request.http.headers.items()),
            body=request.http.body,
        )
        try:
            response = await invoke(
                runtime.engine,
                runtime.linker,
                component,
                guest_request,
                invocation,
                timeout=timeout_ms / 1000,
                memory_bytes=memory_mb * MIB,
            )
        except GuestError as exc:
            raise ExecuteFailed(exc.kind, str(exc)) from exc
    body = response.body
    if body is not None and len(body) > settings.max_response_body_bytes:
        raise ExecuteFailed("response", f"response body exceeds {settings.max_response_body_bytes} bytes")
    return ExecuteResult(status=response.status, headers=_headers(response.headers), body=body)


async def _component(runtime: Runtime, entry: CacheEntry) -> Any:
    try:
        return await runtime.bundles.component(entry)
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


def _outcome_of(exc: RunnerError) -> str:
    if isinstance(exc, ExecuteFailed):
        return _OUTCOME_OF_KIND.get(exc.kind, "trap")
    if isinstance(exc, Overloaded):
        return "overloaded"
    if isinstance(exc, BundleUnavailable):
        return "bundle_error"
    if isinstance(exc, SecretDecryptFailed):
        return "denied"
    if isinstance(exc, BodyTooLarge):
        return "bad_request"
    return "bad_request" if exc.status_code < 500 else "trap"


def _detail(exc: RunnerError) -> str:
    message = getattr(exc, "message", "")
    return f" ({message})" if message else ""
