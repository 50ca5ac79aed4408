"""The gateway's one way to reach runners: ``POST {runner}/v1/execute``, with bounded, jittered retries.

Runners are tried in the order of the RunnerPool (``_runner_pool.py``: round robin or by content hash, not-ready
runners last); one that refused a connection sits out a short cooldown. A request is retried
(on a connection failure, or a 502/503/504 from the runner hop) only when repeating it is safe: GET/HEAD,
or a non-GET whose client supplied an idempotency key. A connection that was never established is always safe
to retry: nothing reached a runner. So is a runner's ``503 {"error": "draining"}`` (it is shutting down and
answers that without starting the request, see ``servicekit.serve_app``): that runner sits out the cooldown
like one that refused a connection, and the call goes to the next one.

The call has one deadline, ``limits.timeout_ms``: each retry sends the runner what is left of it (never the
full budget again), and no retry starts with less than ``min_attempt_ms`` left.

The hop itself is ``_http11.Pool`` (h11 on kept-alive trio streams) for ``http://`` runners; httpx serves
``https://`` runners and injected test transports.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol, final
from urllib.parse import urlsplit

import httpx
import orjson
import trio

from contract import (
    ErrorCode,
    ExecuteRequest,
    ExecuteResult,
    InvalidBase64,
    InvalidField,
    decode_execute_result,
    encode_execute_request,
)
from servicekit import DRAINING, inject_trace

from ._errors import UpstreamError
from ._http11 import ConnectFailed, HopResponse, Origin, Pool, ResponseTooLarge, TransportFailed
from ._runner_pool import RunnerPool

log = logging.getLogger("gateway_quart.runner")

DEFAULT_COOLDOWN_S: Final = 5.0
DEFAULT_BACKOFF_BASE_S: Final = 0.05
DEFAULT_BACKOFF_MAX_S: Final = 1.0
DEFAULT_CONNECT_TIMEOUT_S: Final = 5.0
DEFAULT_TIMEOUT_GRACE_S: Final = 1.0
"""Time granted beyond ``timeout_ms`` for the runner to report its own timeout before the gateway gives up."""
DEFAULT_MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024
DEFAULT_MIN_ATTEMPT_MS: Final = 100
RUNNER_POOL_IDLE_S: Final = 30.0  # < servicekit.KEEP_ALIVE_TIMEOUT_S: see where the client is built
"""A retry needs at least this much of the call's deadline left to be worth sending."""
_RETRY_HTTP_STATUSES: Final = frozenset({502, 503, 504})
_RETRY_ENVELOPE_STATUSES: Final = frozenset({502, 503})


@dataclass(frozen=True)
class RunnerResult:
    """What a runner answered (``result``: the guest's response, or a runner-side failure), and where from."""

    result: ExecuteResult
    runner: str
    attempts: int
    retry_after: str | None = None
    timing: str | None = None
    """The runner's ``server-timing`` (``queue``, ``load``, ``guest`` in ms), when it sent one."""


class _Hop(Protocol):
    async def post(self, url: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> HopResponse:
        """POST ``body`` to ``{url}/v1/execute``.

        Raises:
            ConnectFailed, TransportFailed, ResponseTooLarge: as :class:`_http11.Pool`.
            trio.TooSlowError: the read timeout passed (httpx only; the lean hop leaves that to the caller).
        """
        ...

    async def aclose(self) -> None: ...


@final
class _LeanHop:
    """h11 on kept-alive trio streams (``http://`` runners)."""

    def __init__(self, *, connect_timeout_s: float, max_response_bytes: int) -> None:
        self._pool = Pool(idle_s=RUNNER_POOL_IDLE_S, connect_timeout_s=connect_timeout_s)
        self._max_response_bytes = max_response_bytes
        # Parsed once per runner URL (the pool's members may change: DNS discovery).
        self._routes: dict[str, tuple[Origin, bytes]] = {}

    def _route(self, url: str) -> tuple[Origin, bytes]:
        route = self._routes.get(url)
        if route is None:
            parts = urlsplit(url)
            port = parts.port or 80
            host = parts.hostname or ""
            authority = parts.netloc.rsplit("@", 1)[-1]
            target = f"{parts.path.rstrip('/')}/v1/execute".encode()
            route = self._routes[url] = (Origin(host, port, authority), target)
        return route

    async def post(self, url: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> HopResponse:
        origin, target = self._route(url)
        return await self._pool.request(origin, b"POST", target, headers, body,
                                        max_response_bytes=self._max_response_bytes)

    async def aclose(self) -> None:
        await self._pool.aclose()


@final
class _HttpxHop:
    """httpx, for ``https://`` runners and injected transports (tests)."""

    def __init__(self, *, budget_s: float, connect_timeout_s: float, max_response_bytes: int,
                 transport: httpx.AsyncBaseTransport | None) -> None:
        # Parsed once per runner URL: httpx's URL parser is pure Python and showed up in the per-call profile.
        self._urls: dict[str, httpx.URL] = {}
        self._max_response_bytes = max_response_bytes
        timeout = httpx.Timeout(budget_s, connect=min(connect_timeout_s, budget_s))
        limits = httpx.Limits(keepalive_expiry=RUNNER_POOL_IDLE_S)
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport, limits=limits,
                                         follow_redirects=False, trust_env=False)

    async def post(self, url: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> HopResponse:
        try:
            target = self._urls.get(url)
            if target is None:
                target = self._urls[url] = httpx.URL(f"{url}/v1/execute")
            async with self._client.stream("POST", target, content=body, headers=headers) as resp:
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > self._max_response_bytes:
                        raise ResponseTooLarge(f"runner response exceeds {self._max_response_bytes} bytes")
                    chunks.append(chunk)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ConnectFailed(str(exc)) from exc
        except httpx.TimeoutException as exc:
            raise trio.TooSlowError from exc
        except httpx.TransportError as exc:
            raise TransportFailed(type(exc).__name__) from exc
        return HopResponse(resp.status_code, dict(resp.headers), b"".join(chunks))

    async def aclose(self) -> None:
        await self._client.aclose()


class _Retryable(Exception):
    def __init__(self, reason: str, *, connected: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.connected = connected


@final
class RunnerClient:
    """POSTs execute requests to a pool of runners.

    Args:
        base_urls: the runners' base URLs.
        service_token: sent as ``Authorization: Bearer`` when set.
        timeout_ms: deadline of one call; the whole call (retries included) ends within it plus a grace.
        attempts: attempts per call, the first included.
        cooldown_s: how long a runner that refused a connection is skipped.
        min_attempt_ms: no retry starts with less of the deadline left than this.
        transport: an httpx transport (tests); the default pools real connections.
    """

    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        service_token: str | None,
        timeout_ms: int,
        attempts: int,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        backoff_base_s: float = DEFAULT_BACKOFF_BASE_S,
        backoff_max_s: float = DEFAULT_BACKOFF_MAX_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        timeout_grace_s: float = DEFAULT_TIMEOUT_GRACE_S,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        min_attempt_ms: int = DEFAULT_MIN_ATTEMPT_MS,
        transport: httpx.AsyncBaseTransport | None = None,
        pool: RunnerPool | None = None,
    ) -> None:
        self._pool = pool or RunnerPool(base_urls)
        urls = self._pool.members
        self._timeout_ms = timeout_ms
        self._attempts = max(1, attempts)
        self._cooldown_s = cooldown_s
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._budget_s = timeout_ms / 1000 + timeout_grace_s
        self._max_response_bytes = max_response_bytes
        self._min_attempt_ms = min_attempt_ms
        self._headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
        if service_token:
            self._headers.append((b"authorization", f"Bearer {service_token}".encode()))
        # Idle connections to runners are let go well before a runner would close them (servicekit's
        # KEEP_ALIVE_TIMEOUT_S, 75 s): never reuse a connection the runner is closing at that instant.
        connect_s = min(connect_timeout_s, self._budget_s)
        self._transport = transport
        self._admin: httpx.AsyncClient | None = None  # replays: rare, long, never on the hot path
        self._hop: _Hop
        if transport is None and all(url.startswith("http://") for url in urls):
            self._hop = _LeanHop(connect_timeout_s=connect_s, max_response_bytes=max_response_bytes)
        else:
            self._hop = _HttpxHop(budget_s=self._budget_s, connect_timeout_s=connect_s,
                                  max_response_bytes=max_response_bytes, transport=transport)

    @property
    def timeout_ms(self) -> int:
        return self._timeout_ms

    async def aclose(self) -> None:
        await self._hop.aclose()
        if self._admin is not None:
            await self._admin.aclose()

    async def replay(self, body: Mapping[str, Any], *, timeout_s: float) -> tuple[int, Any]:
        """``POST {runner}/v1/replay`` with ``body`` (service token), to the first runner that answers.

        Returns the runner's HTTP status and its JSON answer (``None`` when it sent no JSON). A runner that
        refuses the connection is skipped; nothing else is retried (a replay may take long).

        Raises:
            UpstreamError: 502 ``bad_gateway`` when no runner answered, 504 ``gateway_timeout`` after ``timeout_s``.
        """
        if self._admin is None:
            self._admin = httpx.AsyncClient(transport=self._transport, follow_redirects=False, trust_env=False,
                                            timeout=httpx.Timeout(timeout_s, connect=DEFAULT_CONNECT_TIMEOUT_S))
        headers = {name.decode(): value.decode() for name, value in self._headers}
        key = body.get("content_hash")
        for url in self._pool.order(key.removeprefix("sha256:") if isinstance(key, str) else None):
            try:
                resp = await self._admin.post(f"{url}/v1/replay", json=dict(body), headers=headers,
                                              timeout=timeout_s)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                self._pool.cool(url, self._cooldown_s)
                log.warning("runner %s refused the replay: %s", url, exc)
                continue
            except httpx.TimeoutException:
                raise UpstreamError("gateway_timeout", "the replay did not finish in time", status=504) from None
            except httpx.TransportError as exc:
                log.warning("runner %s failed the replay: %s", url, type(exc).__name__)
                raise UpstreamError("bad_gateway", "the runner failed the replay", status=502) from None
            try:
                return resp.status_code, resp.json()
            except ValueError:
                return resp.status_code, None
        raise UpstreamError("bad_gateway", "no runner could serve the replay", status=502)

    @property
    def pool(self) -> RunnerPool:
        return self._pool

    async def execute(
        self,
        request: ExecuteRequest,
        *,
        idempotency_key: str | None,
        retryable: bool,
    ) -> RunnerResult:
        """Run one extension call.

        Args:
            request: the call; its context also gives the routing headers (``x-alga-tenant``,
                ``x-alga-extension``, ``x-request-id``).
            idempotency_key: ``x-idempotency-key`` (non-GET calls).
            retryable: whether repeating the call is safe once it may have reached a runner.

        Raises:
            UpstreamError: 502 ``bad_gateway`` when no runner gave a usable answer, 504 ``gateway_timeout``
                when the deadline passed first.
        """
        ctx = request.context
        request_id = ctx.request_id or ""
        headers = [
            *self._headers,
            (b"x-alga-tenant", ctx.tenant_id.encode()),
            (b"x-alga-extension", ctx.extension_id.encode()),
            (b"x-request-id", request_id.encode()),
        ]
        payload = _encode(request)
        if idempotency_key is not None:
            headers.append((b"x-idempotency-key", idempotency_key.encode()))
        trace: dict[str, str] = {}
        inject_trace(trace)  # the runner's span joins this request's trace (W3C traceparent)
        headers += [(name.encode(), value.encode()) for name, value in trace.items()]
        order = self._pool.order(ctx.content_hash)
        last_reason = "no runner answered"
        started = trio.current_time()
        with trio.move_on_after(self._budget_s) as deadline:
            for attempt in range(self._attempts):
                url = order[attempt % len(order)]
                if attempt:
                    delay = min(self._backoff_max_s, self._backoff_base_s * 2 ** (attempt - 1))
                    delay *= random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not crypto
                    left_ms = self._left_ms(request, started, after_s=delay)
                    if left_ms < self._min_attempt_ms:
                        last_reason += f" (no retry: {max(0, left_ms)} ms of the deadline left)"
                        break
                    await trio.sleep(delay)
                    # The runner's deadline is what is left of the caller's, never a fresh timeout_ms.
                    left = replace(request.limits, timeout_ms=self._left_ms(request, started))
                    payload = _encode(replace(request, limits=left))
                try:
                    return await self._post(url, payload, headers, attempt + 1)
                except _Retryable as exc:
                    last_reason = exc.reason
                    log.warning("runner %s failed for request %s (attempt %d): %s",
                                url, request_id, attempt + 1, exc.reason)
                    if exc.connected and not retryable:
                        break
        if deadline.cancelled_caught:
            raise UpstreamError("gateway_timeout", "the extension did not answer in time", status=504)
        # The reason (which names the runner's address) goes to the log above, never to the client.
        raise UpstreamError("bad_gateway", "no runner could serve the request", status=502)

    def _left_ms(self, request: ExecuteRequest, started: float, *, after_s: float = 0.0) -> int:
        """What is left of the call's deadline (``limits.timeout_ms``, at most the client's) ``after_s`` from now."""
        budget_ms = min(request.limits.timeout_ms or self._timeout_ms, self._timeout_ms)
        return int(budget_ms - (trio.current_time() + after_s - started) * 1000)

    async def _post(self, url: str, payload: bytes, headers: list[tuple[bytes, bytes]], attempt: int) -> RunnerResult:
        try:
            resp = await self._hop.post(url, payload, headers)
        except ConnectFailed as exc:
            self._pool.cool(url, self._cooldown_s)
            raise _Retryable(f"connect failed: {exc}", connected=False) from exc
        except trio.TooSlowError as exc:
            raise UpstreamError("gateway_timeout", "the extension did not answer in time", status=504) from exc
        except TransportFailed as exc:
            raise _Retryable(f"transport error: {exc}", connected=True) from exc
        except ResponseTooLarge as exc:
            raise UpstreamError("bad_gateway", str(exc), status=502) from None
        raw = resp.body
        if resp.status == 503 and _is_draining(raw):
            self._pool.cool(url, self._cooldown_s)
            raise _Retryable("runner draining", connected=False)
        self._pool.cool(url, 0.0)
        if resp.status in _RETRY_HTTP_STATUSES:
            raise _Retryable(f"runner answered HTTP {resp.status}", connected=True)
        timing = resp.headers.get("server-timing")
        if resp.status == 429:
            overloaded = ExecuteResult.failure(429, ErrorCode.OVERLOADED)
            return RunnerResult(overloaded, url, attempt, resp.headers.get("retry-after"), timing)
        if resp.status != 200:
            log.error("runner %s answered HTTP %d (check RUNNER_SERVICE_TOKEN)", url, resp.status)
            raise UpstreamError("bad_gateway", f"runner answered HTTP {resp.status}", status=502)
        answer = replace(_parse_envelope(raw, url, attempt), timing=timing)
        result = answer.result
        if result.error is not None and result.status in _RETRY_ENVELOPE_STATUSES:
            raise _Retryable(f"runner error {result.status} {result.error}", connected=True)
        return answer


def _encode(request: ExecuteRequest) -> bytes:
    return orjson.dumps(encode_execute_request(request))  # compact UTF-8 JSON, as json.dumps wrote it, ~5x faster


def _is_draining(raw: bytes) -> bool:
    try:
        data = json.loads(raw)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("error") == DRAINING


def _parse_envelope(raw: bytes, url: str, attempt: int) -> RunnerResult:
    """Check the runner's ``{status, headers, body_b64, error}`` answer."""
    try:
        data = orjson.loads(raw)
    except ValueError:  # orjson.JSONDecodeError is one
        data = None
    if not isinstance(data, dict):
        raise UpstreamError("bad_gateway", "runner answered something other than a JSON object", status=502)
    try:
        result = decode_execute_result(data)
    except InvalidBase64:
        raise UpstreamError("bad_gateway", "runner answer has an invalid body_b64", status=502) from None
    except InvalidField:
        raise UpstreamError("bad_gateway", "runner answer does not follow the execute contract", status=502) from None
    return RunnerResult(result, url, attempt, result.headers.get("retry-after"))
