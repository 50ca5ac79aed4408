"""The debug tail over HTTP: a WebSocket, an SSE fallback on the same path, and the console page.

Routes (all read-only, all needing ``extension:read`` in the caller's own tenant):

``GET /api/ext-debug/stream?extensionId=…&requestId=&installId=&level=&stream=&last=``
    As a WebSocket upgrade: one JSON text message per event or control item (see ``_events``). As a plain
    GET (what the reference's clients do, ``Accept: text/event-stream``): Server-Sent Events, ``data: <event
    JSON>`` with ``id: <entry id>`` so ``Last-Event-ID`` resumes without a replay; ``dropped`` and ``error``
    items as named events; heartbeats as comment lines.
``GET /msp/extensions/<extensionId>/debug``
    The console page (HTML, one script and one stylesheet from ``/ext-debug/assets/``; CSP ``script-src
    'self'``, no inline script).

The tenant comes only from the caller's credential, through the ``authorize`` callable the gateway passes in.
A ``tenantId`` query parameter is accepted for the reference's clients, and refused (403 ``tenant_mismatch``;
WebSocket close 4403) unless it names the caller's own tenant: the reference let it select any tenant.

Credentials, in the order looked at: ``Authorization: Bearer`` (CLI and scripts), the ``token`` query
parameter, the session cookie (the console page). Browsers cannot set headers on a WebSocket, so a script
outside the gateway's pages needs either the cookie or the query parameter. The query parameter ends up in
access logs and browser history, so the page itself never uses it; prefer the header wherever a client can
set one. A cookie is sent by the browser on any site's WebSocket handshake, so a cookie-authenticated
WebSocket must come from the gateway's own origin (or one listed in ``allowed_origins``): otherwise it is
refused with 4403 ``origin_not_allowed`` (cross-site WebSocket hijacking).

Refusals on the WebSocket: the handshake is accepted, then closed with code ``4000 + HTTP status`` (4400,
4401, 4403, 4503) and the error code as the reason, so that browser scripts can read why (a rejected handshake
shows them nothing).

An open tail is only as good as its credential: every ``reauthorize_every`` seconds the credential the tail
was opened with is checked again through ``reauthorize`` (the gateway passes one that reads its registry
without the auth cache, and the auth cache TTL as the period), and a tail whose token was revoked or
expired, whose session ended or whose caller lost ``extension:read`` or changed tenant is closed: the
WebSocket with 4401 ``credentials_revoked``, the SSE stream with an ``error`` event of that code (checked as
items go out, so within a heartbeat of the period).
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final, Literal, Protocol, final
from urllib.parse import urlsplit

import trio
from quart import Blueprint, Response, request, url_for, websocket
from quart.wrappers.base import BaseRequestWebsocket

from contract import DEFAULT_STREAM_PREFIX, is_stream_key_part

from .._errors import ApiError, Forbidden, InvalidRequest, Unauthorized
from .._headers import HeaderLookup
from ._events import TailFilters, is_stream_id, stream_key
from ._tail import (
    DEFAULT_BLOCK_MS,
    DEFAULT_BUFFER_SIZE,
    DEFAULT_HEARTBEAT,
    DEFAULT_LAST_N,
    MAX_LAST_N,
    TailSubscription,
    replay_and_tail,
)

__all__ = [
    "DEFAULT_MAX_TAILS",
    "DEFAULT_REAUTHORIZE_S",
    "DEFAULT_STREAM_PREFIX",
    "PERMISSION",
    "STREAM_PATH",
    "Authorize",
    "DebugCaller",
    "DebugCredentials",
    "create_debug_blueprint",
]

STREAM_PATH: Final = "/api/ext-debug/stream"
DEFAULT_REAUTHORIZE_S: Final = 5.0
"""Seconds between checks of an open tail's credentials (the gateway passes its auth cache TTL)."""
REVOKED: Final = "credentials_revoked"
CONSOLE_PATH: Final = "/msp/extensions/<extension_id>/debug"
ASSET_PATH: Final = "/ext-debug/assets/<name>"
PERMISSION: Final = "extension:read"
DEFAULT_MAX_TAILS: Final = 64
"""Concurrent tails per gateway process; each holds one Redis connection and one worker thread."""
SSE_RETRY_MS: Final = 3000

_ASSETS: Final = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}
_HOST: Final = re.compile(r"^[A-Za-z0-9.\-:\[\]]{1,255}$")
_PAGE_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'{ws}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class DebugCaller(Protocol):
    """Who is tailing: the gateway's ``Principal`` fits."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def permissions(self) -> Set[str]: ...


@dataclass(frozen=True)
class DebugCredentials:
    """What the request presented, for ``authorize`` to resolve.

    Attributes:
        token: a bearer token from ``Authorization: Bearer`` or else the ``token`` query parameter; ``None``
            means the caller relies on the session cookie (in ``cookies``).
        token_source: where ``token`` came from.
        headers: the request headers (``authorization`` already parsed into ``token``).
        cookies: the request cookies.
    """

    token: str | None
    token_source: Literal["header", "query"] | None
    headers: HeaderLookup = field(repr=False)
    cookies: Mapping[str, str] = field(repr=False)


Authorize = Callable[[DebugCredentials], Awaitable[DebugCaller]]
"""Resolves credentials to a caller; raises the gateway's ``Unauthorized`` (401) or ``Forbidden`` (403)."""


@dataclass(frozen=True)
class _Admission:
    key: str
    filters: TailFilters
    last_n: int
    credentials: DebugCredentials
    tenant_id: str


@final
class _Slots:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def check(self) -> None:
        if self.active >= self.limit:
            raise ApiError("too_many_tails", "too many debug tails are open; try again later", status=503)

    def take(self) -> None:
        self.check()
        self.active += 1

    def release(self) -> None:
        self.active -= 1


def _credentials(conn: BaseRequestWebsocket) -> DebugCredentials:
    header = conn.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("invalid_token", "Authorization must be 'Bearer <token>'")
        return DebugCredentials(value.strip(), "header", conn.headers, conn.cookies)
    query = conn.args.get("token")
    if query:
        return DebugCredentials(query, "query", conn.headers, conn.cookies)
    return DebugCredentials(None, None, conn.headers, conn.cookies)


def _same_origin(conn: BaseRequestWebsocket, allowed: frozenset[str]) -> bool:
    origin = conn.headers.get("origin")
    if origin is None:  # not a browser: browsers always send Origin on a WebSocket handshake
        return True
    normalized = origin.rstrip("/").lower()
    return normalized in allowed or urlsplit(normalized).netloc == conn.host.lower()


def _error_response(exc: ApiError) -> Response:
    response = Response(json.dumps(exc.body()), status=exc.status, content_type="application/json")
    for name, value in exc.headers.items():
        response.headers[name] = value
    return response


def _sse_frame(item: Mapping[str, Any]) -> bytes:
    kind = item.get("type")
    if kind == "heartbeat":
        return b": heartbeat\n\n"
    data = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    if kind is None:
        return f"id: {item['id']}\ndata: {data}\n\n".encode()
    return f"event: {kind}\ndata: {data}\n\n".encode()


def _load_assets() -> tuple[str, dict[str, bytes]]:
    here = resources.files(__package__ or "gateway_quart.debug")
    page = (here / "console.html").read_text(encoding="utf-8")
    return page, {name: (here / name).read_bytes() for name in _ASSETS}


def create_debug_blueprint(
    *,
    redis_url: str | None,
    authorize: Authorize,
    stream_prefix: str = DEFAULT_STREAM_PREFIX,
    allowed_origins: Iterable[str] = (),
    max_tails: int = DEFAULT_MAX_TAILS,
    last_n: int = DEFAULT_LAST_N,
    heartbeat: float = DEFAULT_HEARTBEAT,
    block_ms: int = DEFAULT_BLOCK_MS,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    name: str = "ext_debug",
    reauthorize: Authorize | None = None,
    reauthorize_every: float = DEFAULT_REAUTHORIZE_S,
) -> Blueprint:
    """The debug tail's routes (see the module docstring), ready for ``app.register_blueprint``.

    Args:
        redis_url: where the runner publishes; ``None`` answers the stream routes with 503
            ``debug_stream_unavailable`` (the console page still loads and says so).
        authorize: resolves a request's credentials to the caller; it may raise ``Unauthorized``/``Forbidden``.
        stream_prefix: the runner's ``RUNNER_DEBUG_REDIS_STREAM_PREFIX``.
        allowed_origins: origins besides the gateway's own whose pages may open a cookie-authenticated tail.
        max_tails: concurrent tails; beyond it new ones get 503 ``too_many_tails`` (close 4503).
        last_n: events replayed by default (a request may ask for ``last`` up to ``MAX_LAST_N``).
        heartbeat: seconds of quiet before a heartbeat goes out (keeps proxies from closing idle streams).
        block_ms: longest single ``XREAD BLOCK``.
        buffer_size: events held per slow client before dropping.
        name: the blueprint name.
        reauthorize: checks an open tail's credentials again (default: ``authorize``); a refusal closes it.
        reauthorize_every: seconds between those checks.
    """
    if max_tails <= 0:
        raise ValueError("max_tails must be positive")
    if not reauthorize_every > 0:
        raise ValueError("reauthorize_every must be positive")
    recheck = reauthorize if reauthorize is not None else authorize
    if not 0 <= last_n <= MAX_LAST_N:
        raise ValueError(f"last_n must be within 0..{MAX_LAST_N}")
    blueprint = Blueprint(name, __name__)
    origins = frozenset(origin.rstrip("/").lower() for origin in allowed_origins)
    slots = _Slots(max_tails)
    # Twice the tails: a closed tail's abandoned XREAD keeps its thread for up to block_ms, and a new tail
    # should not wait for it.
    limiter = trio.CapacityLimiter(2 * max_tails)
    page_template, assets = _load_assets()

    async def authorized(
        conn: BaseRequestWebsocket, *, cookie_needs_origin: bool
    ) -> tuple[DebugCaller, DebugCredentials]:
        credentials = _credentials(conn)
        if credentials.token is None and cookie_needs_origin and not _same_origin(conn, origins):
            raise Forbidden("origin_not_allowed", "a session-authenticated tail must come from the gateway's pages")
        caller = await authorize(credentials)
        _check_caller(caller)
        return caller, credentials

    def _check_caller(caller: DebugCaller) -> None:
        if PERMISSION not in caller.permissions:
            raise Forbidden("forbidden", f"missing permission {PERMISSION}", extra={"permission": PERMISSION})
        # No ":" in either part of the key: it would let one tenant's tail read another tenant's stream.
        if not is_stream_key_part(caller.tenant_id):
            raise Forbidden("tenant_not_streamable", "this tenant id cannot name a debug stream")

    async def still_authorized(admission: _Admission) -> bool:
        """Whether the tail's credentials still name the same tenant with ``extension:read``."""
        try:
            caller = await recheck(admission.credentials)
            _check_caller(caller)
        except ApiError:
            return False
        return caller.tenant_id.lower() == admission.tenant_id.lower()

    async def admit(conn: BaseRequestWebsocket, *, is_websocket: bool) -> _Admission:
        caller, credentials = await authorized(conn, cookie_needs_origin=is_websocket)
        args = conn.args
        extension_id = (args.get("extensionId") or "").strip()
        if not extension_id:
            raise InvalidRequest({"extensionId": "required"})
        if not is_stream_key_part(extension_id):
            raise InvalidRequest({"extensionId": "not a valid extension id"})
        requested_tenant = (args.get("tenantId") or "").strip()
        if requested_tenant and requested_tenant.lower() != caller.tenant_id.lower():
            raise Forbidden("tenant_mismatch", "tenantId must be the caller's own tenant")
        try:
            filters = TailFilters.parse(
                request_id=args.get("requestId"),
                install_id=args.get("installId"),
                level=args.get("level"),
                stream=args.get("stream"),
            )
        except ValueError as exc:
            raise InvalidRequest({str(exc.args[0]): str(exc.args[1])}) from None
        count = last_n
        if args.get("last"):
            raw = args.get("last", "")
            if not raw.isdigit() or int(raw) > MAX_LAST_N:
                raise InvalidRequest({"last": f"an integer within 0..{MAX_LAST_N}"})
            count = int(raw)
        if redis_url is None:
            raise ApiError("debug_stream_unavailable", "debug events are not enabled", status=503)
        slots.check()
        key = stream_key(stream_prefix, caller.tenant_id, extension_id)
        return _Admission(key, filters, count, credentials, caller.tenant_id)

    def subscribe(admission: _Admission, *, after_id: str | None = None) -> TailSubscription:
        assert redis_url is not None  # admit() refused otherwise
        return replay_and_tail(
            redis_url,
            admission.key,
            filters=admission.filters,
            last_n=admission.last_n,
            after_id=after_id,
            heartbeat=heartbeat,
            block_ms=block_ms,
            buffer_size=buffer_size,
            limiter=limiter,
        )

    @blueprint.websocket(STREAM_PATH)
    async def stream_websocket() -> None:
        try:
            admission = await admit(websocket, is_websocket=True)
            slots.take()
        except ApiError as exc:
            await websocket.accept()
            await websocket.close(4000 + exc.status, exc.code)
            return
        try:
            await websocket.accept()
            async with trio.open_nursery() as nursery:
                # Nothing is expected from the client, but its messages must be read: Quart's inbound queue
                # is bounded and a full one would stall the handling of the client's close.
                nursery.start_soon(_discard_incoming)
                nursery.start_soon(watch_credentials, admission, nursery.cancel_scope)
                async with subscribe(admission) as events:
                    async for item in events:
                        await websocket.send(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
                await websocket.close(1011, "tail_failed")
                nursery.cancel_scope.cancel()
        finally:
            slots.release()

    async def watch_credentials(admission: _Admission, scope: trio.CancelScope) -> None:
        while True:
            await trio.sleep(reauthorize_every)
            if not await still_authorized(admission):
                await websocket.close(4401, REVOKED)
                scope.cancel()
                return

    @blueprint.get(STREAM_PATH)
    async def stream_sse() -> Response:
        try:
            admission = await admit(request, is_websocket=False)
        except ApiError as exc:
            return _error_response(exc)
        resume = request.headers.get("last-event-id")
        after_id = resume if resume and is_stream_id(resume) else None

        async def body() -> AsyncIterator[bytes]:
            # The slot is taken here, not before: a body that is never iterated must not hold one.
            try:
                slots.take()
            except ApiError as exc:
                yield _sse_frame({"type": "error", "code": exc.code})
                return
            events = subscribe(admission, after_id=after_id)
            next_check = trio.current_time() + reauthorize_every
            try:
                yield f"retry: {SSE_RETRY_MS}\n\n".encode()
                async for item in events:
                    if trio.current_time() >= next_check:
                        if not await still_authorized(admission):
                            yield _sse_frame({"type": "error", "code": REVOKED})
                            return
                        next_check = trio.current_time() + reauthorize_every
                    yield _sse_frame(item)
            finally:
                await events.aclose()
                slots.release()

        response = Response(body(), status=200, content_type="text/event-stream; charset=utf-8")
        response.headers["cache-control"] = "no-cache, no-transform"
        response.headers["x-accel-buffering"] = "no"  # nginx: pass events through as they come
        response.timeout = None  # a tail lasts as long as the client wants it
        return response

    @blueprint.get(CONSOLE_PATH)
    async def console(extension_id: str) -> Response:
        try:
            caller, _ = await authorized(request, cookie_needs_origin=False)
            if not is_stream_key_part(extension_id):
                raise InvalidRequest({"extensionId": "not a valid extension id"})
        except ApiError as exc:
            return _error_response(exc)
        escaped = html.escape(extension_id, quote=True)
        own = request.blueprint or name  # the name it was registered under
        page = (
            page_template.replace("{{EXTENSION_ID}}", escaped)
            .replace("{{STREAM_PATH}}", html.escape(url_for(f"{own}.stream_sse"), quote=True))
            .replace("{{CONSOLE_JS}}", html.escape(url_for(f"{own}.asset", name="console.js"), quote=True))
            .replace("{{CONSOLE_CSS}}", html.escape(url_for(f"{own}.asset", name="console.css"), quote=True))
            # The journal panel reads the caller's own tenant's entries through the admin API (tenant admins).
            .replace("{{JOURNAL_PATH}}",
                     html.escape(f"/api/v1/tenants/{urllib.parse.quote(caller.tenant_id, safe='')}/journal",
                                 quote=True))
        )
        response = Response(page, status=200, content_type="text/html; charset=utf-8")
        host = request.host if _HOST.match(request.host) else ""
        # 'self' covers ws(s): of the same host in current browsers; the explicit entries serve older ones.
        ws_sources = f" ws://{host} wss://{host}" if host else ""
        response.headers["content-security-policy"] = _PAGE_CSP.format(ws=ws_sources)
        response.headers["x-content-type-options"] = "nosniff"
        response.headers["referrer-policy"] = "no-referrer"
        response.headers["x-frame-options"] = "DENY"
        response.headers["cache-control"] = "no-store"
        return response

    @blueprint.get(ASSET_PATH)
    async def asset(name: str) -> Response:
        data = assets.get(name)
        if data is None:
            return _error_response(ApiError("not_found", status=404))
        response = Response(data, status=200, content_type=_ASSETS[name])
        response.headers["x-content-type-options"] = "nosniff"
        response.headers["cache-control"] = "no-cache"
        return response

    return blueprint


async def _discard_incoming() -> None:
    while True:
        await websocket.receive()
