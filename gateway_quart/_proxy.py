"""``/api/ext/{extensionId}/{path...}``: authenticate, authorize, audit and forward one call to a runner.

The order is the contract's: credential (401) -> tenant from the credential, an ``x-alga-tenant`` header may only
agree (403) -> active install (404 ``not_installed``) -> manifest endpoint (404 ``endpoint_not_found``) -> RBAC
(403) -> rate limit per (tenant, extension) (429) -> tenant budgets (429 ``quota_exceeded``) -> audit row -> body (413)
-> ``POST /v1/execute``; the row's final status is set after the call, whatever its outcome, off the response
path, and the answer's usage goes to the usage recorder and the budget counters (``_usage.py``, ``_budgets.py``).

``/api/ext-proxy/{extensionId}/{path...}`` (where the reference's host page sends the iframe's ``apiproxy``
calls) is the same handler with the same checks. ``/api/ext/{extensionId}`` routes to the guest's ``/``.

Method override, as reference UIs use it: a ``POST`` with ``?__method=X`` or a JSON object body with a
``"__method": "X"`` key is handled as method ``X`` (one of :data:`OVERRIDE_METHODS`) from the endpoint match on;
the key is removed from the query and the body the guest sees. For a JSON body the endpoint and RBAC are
checked loosely (any method the path declares) before the rate limit, and strictly once the body is read
(right after the rate limit, before the audit row), so no refusal waits for a body.
The guest also sees ``x-alga-tenant``, ``x-alga-extension`` and ``x-idempotency-key`` (the caller's, else one
generated for a method that is not read-only), as the reference gateway sends them.

**Served in front of Quart.** These routes are the gateway's hot path, and Quart's per-request machinery
(request context, routing, before/after hooks, ``Response`` objects) took ~0.2 ms of a proxied call's path
through the gateway, whose whole added latency was ~1.3 ms (docs/benchmarks.md). :class:`ProxyRoutes` is a
plain ASGI app wrapped around Quart's (``app.asgi_app``, so test clients go through it too): it answers
``/api/ext/...`` and ``/api/ext-proxy/...`` itself, counts them in the gateway's metrics (``_metrics.py``), and
hands every other request, websocket and lifespan event to Quart. It reads
the request with werkzeug's sans-IO ``Request`` (the parsing Quart's own request does: query, cookies,
mimetype, content length, host), reads the body as quart-trio does (a task receives it while the call runs, and
a client that goes away cancels the call: its audit status is 499), and gives every answer, refusals and
unexpected errors included, what the app's hooks give Quart's answers: JSON errors, the security headers, the
request id, CORS, and ``Connection: close`` when it answers before the request's body has arrived.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, final

import trio
from werkzeug.datastructures import Headers
from werkzeug.sansio.request import Request

import bundles
from contract import (
    ErrorCode,
    ExecuteRequest,
    ExecuteResult,
    HttpRequest,
    JournalPolicy,
    Limits,
    RequestContext,
    UserInfo,
    parse_journal_policy,
    split_error,
)
from servicekit import declares_body, new_request_id, server_span, tracer, unexpected_error

from ._auth import PERMISSION_READ, PERMISSION_WRITE, Principal, authenticate, check_origin
from ._canary import CANARY_KEY_HEADER, Route
from ._errors import (
    ApiError,
    Forbidden,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RegistryError,
    UpstreamError,
)
from ._headers import (
    SECURITY_HEADERS,
    filter_response_headers,
    forward_request_headers,
    idempotency_key,
    request_id,
)
from ._journal_index import index_row
from ._runner_client import RunnerResult
from ._state import STATE_KEY, GatewayState
from ._validation import ID_PATTERN
from .registry import Install, Version

__all__ = ["METHODS", "OVERRIDE_METHODS", "ProxyRoutes"]

log = logging.getLogger("gateway_quart.proxy")
_TRACER = tracer("gateway_quart")

METHODS: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
OVERRIDE_KEY: Final = "__method"
OVERRIDE_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
"""What ``__method`` may name: the methods the reference iframe SDK's ``apiproxy`` sends."""
_PREFLIGHT_HEADERS: Final = (
    "authorization, content-type, accept, accept-language, x-request-id, idempotency-key, x-idempotency-key, "
    "x-alga-tenant"
)
_STATUS_CLIENT_CLOSED: Final = 499
_ROUTE: Final = re.compile(r"/api/ext(?:-proxy)?/([^/]+)(?:/(.*))?", re.DOTALL)
"""The proxy's paths (decoded): the extension id, then the guest's path, which may be empty."""

_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_Answer = tuple[int, list[tuple[str, str]], bytes]
"""Status, headers (names in lower case) and body of an answer."""


def _ours(path: str) -> str | None:
    """The extension id when ``path`` is one of the proxy's, else ``None`` (for Quart: its 404).

    A path with an empty segment after the id (``//``) is not the proxy's, as it was not a route of Quart's.
    """
    match = _ROUTE.fullmatch(path)
    if match is None:
        return None
    rest = match.group(2)
    if rest and (rest.startswith("/") or "//" in rest):
        return None
    return match.group(1)


@final
class ProxyRoutes:
    """The proxy's routes as an ASGI app in front of Quart's (see the module docstring).

    Args:
        app: the Quart app: its state (``app.extensions``), its ``BODY_TIMEOUT``.
        inner: Quart's ASGI app (``app.asgi_app``), which gets everything else.
    """

    def __init__(self, app: Any, inner: Callable[[_Scope, _Receive, _Send], Awaitable[None]]) -> None:
        self._app = app
        self._inner = inner

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        ext_id = _ours(scope["path"]) if scope["type"] == "http" else None
        if ext_id is None:
            await self._inner(scope, receive, send)
            return
        st: GatewayState | None = self._app.extensions.get(STATE_KEY)
        if st is None:
            await self._serve(None, scope, receive, send, ext_id)
            return
        started = time.perf_counter()
        st.metrics.inflight.inc()
        status = _STATUS_CLIENT_CLOSED  # unless an answer is made
        try:
            status = await self._serve(st, scope, receive, send, ext_id)
        finally:
            st.metrics.inflight.dec()
            st.metrics.answered(status, time.perf_counter() - started)

    async def _serve(self, st: GatewayState | None, scope: _Scope, receive: _Receive, send: _Send,
                     ext_id: str) -> int:
        call = _Call(scope, receive, limit=st.settings.max_body_bytes if st is not None else 0,
                     body_timeout_s=self._app.config["BODY_TIMEOUT"])
        status = _STATUS_CLIENT_CLOSED
        async with trio.open_nursery() as nursery:
            # Receives the body, then waits for the client to go away, which cancels the call (status 499).
            nursery.start_soon(call.receive_messages, nursery.cancel_scope)
            status, headers, body = await _answer(st, call, ext_id)
            await send({"type": "http.response.start", "status": status,
                        "headers": [(name.encode("latin-1"), value.encode()) for name, value in headers]})
            await send({"type": "http.response.body", "body": body})
            nursery.cancel_scope.cancel()
        return status


@final
class _Call:
    """One request to the proxy: werkzeug's view of it, its request id once known, and its body as it arrives."""

    def __init__(self, scope: _Scope, receive: _Receive, *, limit: int, body_timeout_s: float | None) -> None:
        client = scope.get("client")
        self.request = Request(
            scope["method"], scope["scheme"], scope.get("server"), scope.get("root_path", ""), scope["path"],
            scope["query_string"],
            Headers([(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]),
            client[0] if client else None,
        )
        self.raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        self.request_id: str | None = None
        self._receive = receive
        self._limit = limit
        self._body_timeout_s = body_timeout_s
        self._chunks: list[bytes] = []
        self._size = 0
        self._too_large = False
        self._ended = False  # the last chunk arrived
        self._ready = trio.Event()  # the body is all here, or over the limit

    async def receive_messages(self, cancel: trio.CancelScope) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                cancel.cancel()
                return
            if message["type"] != "http.request" or self._ended:
                continue
            chunk = message.get("body", b"")
            self._size += len(chunk)
            if self._size > self._limit:
                self._too_large = True
                self._chunks.clear()
                self._ready.set()
            elif not self._too_large:
                self._chunks.append(chunk)
            if not message.get("more_body", False):
                self._ended = True
                self._ready.set()

    async def body(self) -> bytes:
        """The whole body.

        Raises:
            PayloadTooLarge: more than the gateway's limit arrived.
            ApiError: 408 ``request_timeout``: the body did not arrive within ``BODY_TIMEOUT``.
        """
        if not self._ready.is_set():
            with trio.move_on_after(self._body_timeout_s if self._body_timeout_s is not None else float("inf")):
                await self._ready.wait()
            if not self._ready.is_set():
                raise ApiError("request_timeout", status=408)
        if self._too_large:
            raise PayloadTooLarge(self._limit)
        return b"".join(self._chunks)

    @property
    def body_unread(self) -> bool:
        """The request declares a body that has not all arrived (or was refused): the answer closes the connection.
        """
        return declares_body(self.request.headers) and (not self._ended or self._too_large)

    def own_origin(self) -> str:
        return self.request.host_url.rstrip("/")


async def _answer(st: GatewayState | None, call: _Call, ext_id: str) -> _Answer:
    """The answer to ``call``: the guest's, or a JSON refusal; with the headers every answer of the proxy carries.
    """
    request = call.request
    try:
        if st is None:
            raise ApiError("not_ready", "the gateway is starting", status=503)
        if request.method not in METHODS:
            raise ApiError("method_not_allowed", status=405, headers={"allow": ", ".join(METHODS)})
        status, headers, body = await _proxy(st, call, ext_id)
    except ApiError as exc:
        status, headers, body = _json(exc.body(call.request_id), exc.status)
        headers.extend(exc.headers.items())
    except RegistryError as exc:
        log.error("registry failure: %s", exc.message)
        status, headers, body = _json(ApiError("registry_unavailable").body(call.request_id), 503)
    except Exception as exc:
        call.request_id = call.request_id or new_request_id()
        status, headers, body = _json(
            unexpected_error(log, exc, method=request.method, path=request.path, request_id=call.request_id,
                             id_field="requestId"), 500)
    headers.extend(SECURITY_HEADERS.items())
    if call.request_id is not None:
        headers.append(("x-request-id", call.request_id))
    if st is not None:
        headers.extend(_cors_headers(st, request.headers.get("origin")).items())
    if call.body_unread:
        headers.append(("connection", "close"))
    return status, headers, body


def _json(data: object, status: int) -> _Answer:
    body = json.dumps(data, ensure_ascii=False).encode()
    return status, [("content-type", "application/json"), ("content-length", str(len(body)))], body


def _cors_headers(st: GatewayState, origin: str | None) -> dict[str, str]:
    if origin is None or origin.rstrip("/").lower() not in st.settings.allowed_origins:
        return {}
    return {
        "access-control-allow-origin": origin,
        "access-control-allow-credentials": "true",
        "access-control-expose-headers": "x-request-id, retry-after",
        "vary": "Origin",
    }


async def _proxy(st: GatewayState, call: _Call, ext_id: str) -> _Answer:
    """Forward one extension API call (see the module docstring for the order of checks)."""
    request = call.request
    call.request_id = request_id(request.headers)
    method = request.method
    if method == "OPTIONS" and "access-control-request-method" in request.headers:
        return _preflight(st, request.headers.get("origin"))
    limit = st.settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(limit)

    principal = await authenticate(st.registry, st.signer, request.headers, request.cookies)
    check_origin(method=method, principal=principal, origin=request.headers.get("origin"),
                 own_origin=call.own_origin, allowed=st.settings.allowed_origins)
    claimed = request.headers.get("x-alga-tenant")
    if claimed is not None and claimed != principal.tenant_id:
        raise Forbidden("tenant_mismatch", "x-alga-tenant does not match the caller's tenant")
    guest_path = _guest_path(call.raw_path)

    install = None
    if ID_PATTERN.fullmatch(ext_id):
        install = await st.registry.find_active_install(principal.tenant_id, ext_id)
    if install is None:
        raise NotFound("not_installed", "the extension is not installed for this tenant")
    manifest = st.manifests.get(install.version)
    method = _query_override(request, method)
    in_body = method == "POST" and OVERRIDE_KEY not in request.args and request.mimetype == "application/json"
    # Until its body is read, a JSON POST may still name any method the path declares: check the loosest now
    # and the named one once the body is read (after the rate limit, so refusals never wait for a body).
    _authorize(manifest, principal, OVERRIDE_METHODS if in_body else frozenset({method}), guest_path)
    wait = await st.limiter.take(principal.tenant_id, ext_id)
    if wait:
        raise RateLimited(wait)
    body: _GuestBody = _UNREAD
    if in_body:
        override, body = _pop_override(await call.body())
        if override is not None:
            method = _checked_method(override)
        _authorize(manifest, principal, frozenset({method}), guest_path)

    if st.budgets is not None:
        await st.budgets.admit(principal.tenant_id)  # 429 quota_exceeded; last refusal before the runner is called
    audit_id = await st.audit.record(
        tenant_id=principal.tenant_id, user_id=principal.user.id, extension_id=ext_id, method=method,
        path=guest_path, request_id=call.request_id,
    )
    status = 500
    try:
        answer = await _execute(st, call, principal, install, method, guest_path, body)
        status = answer[0]
        return answer
    except ApiError as exc:
        status = exc.status
        raise
    except trio.Cancelled:
        status = _STATUS_CLIENT_CLOSED
        raise
    finally:
        # In ``finally``: failed calls and clients that went away (499) get their status too.
        await st.audit.finish(audit_id, status)


@final
class _Unread:
    """The body has not been read yet (``None`` is taken: it means "no body")."""


_UNREAD: Final = _Unread()
_GuestBody = bytes | None | _Unread


def _query_override(request: Request, method: str) -> str:
    """The method a ``POST ?__method=X`` is handled as; ``method`` itself otherwise.

    Raises:
        InvalidRequest: ``__method`` names a method outside :data:`OVERRIDE_METHODS`.
    """
    override = request.args.get(OVERRIDE_KEY) if method == "POST" else None
    return method if override is None else _checked_method(override)


def _checked_method(override: str) -> str:
    wanted = override.strip().upper()
    if wanted not in OVERRIDE_METHODS:
        raise InvalidRequest({OVERRIDE_KEY: f"must be one of {', '.join(sorted(OVERRIDE_METHODS))}"},
                             code="invalid_method")
    return wanted


def _authorize(manifest: bundles.Manifest, principal: Principal, methods: frozenset[str], path: str) -> None:
    """Refuse unless the manifest declares ``path`` for one of ``methods`` and the caller may use one of those.

    Raises:
        NotFound: ``endpoint_not_found``.
        Forbidden: the caller lacks the permission (read for a read-only method, write otherwise).
    """
    declared = [m for m in sorted(methods) if manifest.match_endpoint(m, path) is not None]
    if not declared:
        raise NotFound("endpoint_not_found", "the extension declares no such endpoint")
    read_only = any(m in READ_METHODS for m in declared)
    principal.require(PERMISSION_READ if read_only else PERMISSION_WRITE)


def _pop_override(body: bytes) -> tuple[str | None, bytes | None]:
    """``(X, body without the key)`` for a JSON object body with a string ``__method`` key, else ``(None, body)``.

    The rest of the object is re-serialized; an object left empty means no body (the key was all there was).
    """
    try:
        doc = json.loads(body)
    except ValueError:
        return None, body
    if not isinstance(doc, dict) or not isinstance(doc.get(OVERRIDE_KEY), str):
        return None, body
    override = doc.pop(OVERRIDE_KEY)
    return override, json.dumps(doc, separators=(",", ":")).encode() if doc else None


def _guest_path(raw: bytes) -> str:
    """The raw (still percent-encoded) path after ``/api/ext/{extensionId}``, starting with ``/``.

    Raises:
        InvalidRequest: a ``.`` or ``..`` segment.
    """
    parts = raw.decode("latin-1").split("/", 4)  # ["", "api", "ext", "<ext>", "<rest>"]
    rest = parts[4] if len(parts) > 4 else ""
    for segment in rest.split("/"):
        if urllib.parse.unquote(segment) in (".", ".."):
            raise InvalidRequest({"path": "must not contain '.' or '..' segments"}, code="invalid_path")
    return "/" + rest


async def _execute(
    st: GatewayState,
    call: _Call,
    principal: Principal,
    install: Install,
    method: str,
    guest_path: str,
    guest_body: _GuestBody = _UNREAD,
) -> _Answer:
    """Call the runner as ``method`` (after any override) with ``guest_body``, read here unless already read."""
    request = call.request
    rid = call.request_id
    assert rid is not None  # set before any check that leads here
    if isinstance(guest_body, _Unread):
        body = await call.body()
        has_body = bool(body) or request.content_length is not None or "transfer-encoding" in request.headers
    else:
        body, has_body = guest_body or b"", guest_body is not None
    read_only = method in READ_METHODS
    key = idempotency_key(request.headers)
    runner_key = None if read_only else key or new_request_id()
    query: dict[str, str] = {}
    for name, value in request.args.items(multi=True):
        if name == OVERRIDE_KEY and request.method == "POST":
            continue  # consumed by the method override
        query[name] = value  # the last value wins, as in the reference gateway
    headers = forward_request_headers(request.headers.items(), request_id=rid)
    headers["x-alga-tenant"] = install.tenant_id
    headers["x-alga-extension"] = install.extension_id
    guest_key = key or runner_key
    if guest_key is not None:
        headers["x-idempotency-key"] = guest_key
    user = principal.user
    # A running canary may send this request to its new version (a dict lookup; see _canary.py).
    route = (st.canaries.route(install, user.id, request.headers.get(CANARY_KEY_HEADER), rid)
             if st.canaries is not None else Route(install.version))
    version = route.version
    document = ExecuteRequest(
        context=RequestContext(
            request_id=rid,
            tenant_id=install.tenant_id,
            extension_id=install.extension_id,
            install_id=install.id,
            content_hash=version.content_hash,
            version_id=version.id,
            config=dict(install.config),
        ),
        http=HttpRequest(
            method=method,
            path=guest_path,
            query=query,
            headers=headers,
            body=body if has_body else None,
        ),
        limits=Limits(timeout_ms=st.runner.timeout_ms),
        providers=_grants(st, install, version),
        secret_envelope=dict(install.secrets.envelope) if install.secrets is not None else None,
        user=UserInfo(
            user_id=user.id,
            user_email=user.email,
            user_name=user.name,
            user_type=user.user_type,
            client_name=user.client_name or "",
            client_id=user.client_id,
        ),
        journal=_journal_policy(install.journal_policy),
    )
    attributes = {"tenant.id": install.tenant_id, "extension.id": install.extension_id,
                  "extension.content_hash": f"sha256:{version.content_hash.removeprefix('sha256:')}",
                  "request.id": rid,
                  "http.request.method": method}
    with server_span(_TRACER, f"{request.method} /api/ext/{{extensionId}}", request.headers, attributes) as span:
        started = time.monotonic()
        try:
            answer = await st.runner.execute(document, idempotency_key=runner_key,
                                             retryable=read_only or key is not None)
        except UpstreamError as exc:
            _observe(st, route, started, status=exc.status, error=True, timed_out=exc.status == 504)
            st.metrics.runner_failed(exc.code)
            raise
        _observe(st, route, started, status=answer.result.status, error=answer.result.error is not None,
                 timed_out=answer.result.timed_out)
        if answer.result.error is not None:
            code, _ = split_error(answer.result.error)
            st.metrics.runner_failed(code.value if code is not None else "other")
        if answer.result.journal_entry is not None and st.journal_index is not None:
            row = index_row(install, answer.result, request_id=rid, content_hash=version.content_hash,
                            retention_days=st.settings.journal_retention_days)
            if row is not None:
                st.journal_index.submit(row)  # never waits: the registry write happens in the background
        _account(st, install, answer.result)
        span.set_attribute("http.response.status_code", answer.result.status)
        if answer.result.error is not None:
            span.set_attribute("error.type", answer.result.error)
    return _client_response(answer, request.method, rid)


def _account(st: GatewayState, install: Install, result: ExecuteResult) -> None:
    """Hand the answer's usage to the budget counters and the usage recorder (memory only, never blocks)."""
    if st.budgets is not None:
        st.budgets.consume(install.tenant_id, result)
    if st.usage is not None:
        st.usage.record(install.tenant_id, install.extension_id, result)


_POLICIES: Final[dict[str, JournalPolicy]] = {}


def _journal_policy(text: str) -> JournalPolicy:
    """The install's stored policy as the wire value (parsed once per distinct text; stored ones are valid)."""
    policy = _POLICIES.get(text)
    if policy is None:
        try:
            policy = parse_journal_policy(text)
        except ValueError:
            policy = parse_journal_policy("errors")  # never stored by the admin API; the default keeps calls going
        if len(_POLICIES) < 256:
            _POLICIES[text] = policy
    return policy


def _grants(st: GatewayState, install: Install, version: Version) -> frozenset[str]:
    """The install's grants; for a canary's new version, only those its manifest asks for (as a promotion keeps)."""
    granted = frozenset(install.granted_capabilities)
    if version is install.version:
        return granted
    return granted & (frozenset(st.manifests.get(version).capabilities) | bundles.ALWAYS_GRANTED)


def _observe(st: GatewayState, route: Route, started: float, *, status: int, error: bool, timed_out: bool) -> None:
    """Count the call for its canary arm, if a canary routed it."""
    if route.canary_id is not None and st.canaries is not None:
        st.canaries.observe(route, status=status, error=error, timed_out=timed_out,
                            latency_ms=(time.monotonic() - started) * 1000)


def _client_response(answer: RunnerResult, method: str, rid: str) -> _Answer:
    """Turn the runner's answer into the client's response, or a refusal for runner-side failures."""
    result = answer.result
    # Where the runner spent the time (queue, load, guest), for the caller and its tools: the runner's own
    # header, never the guest's (filter_response_headers drops a guest's server-timing).
    timing = {"server-timing": answer.timing} if answer.timing else {}
    if result.error is not None:
        log.warning("runner %s reported %d %s for request %s", answer.runner, result.status, result.error,
                    rid)
        if result.status == 429:
            raise RateLimited(_retry_after(answer.retry_after), code=ErrorCode.OVERLOADED)
        if result.timed_out:
            raise ApiError("gateway_timeout", "the extension did not answer in time", status=504, headers=timing)
        if result.status == 413:
            # The runner's own words: its real cap (payload_too_large), or the guest's memory cap
            # (body_too_large_for_memory, naming limits.memory_mb). Neither carries an address.
            code, detail = split_error(result.error)
            if code is ErrorCode.BODY_TOO_LARGE_FOR_MEMORY:
                raise ApiError(code.value, detail, status=413)
            raise ApiError(ErrorCode.PAYLOAD_TOO_LARGE.value, detail or "request body too large", status=413)
        raise ApiError("bad_gateway", status=502, headers=timing)
    body = b"" if method == "HEAD" else (result.body or b"")
    headers = [("content-length", str(len(body))), *filter_response_headers(result.headers), *timing.items()]
    return result.status, headers, body


def _retry_after(value: str | None) -> int:
    try:
        return max(1, min(3600, int(value))) if value is not None else 1
    except ValueError:
        return 1


def _preflight(st: GatewayState, origin: str | None) -> _Answer:
    if not _cors_headers(st, origin):
        raise Forbidden("origin_not_allowed", "origin not in EXT_GATEWAY_ALLOWED_ORIGINS")
    return 204, [
        ("access-control-allow-methods", ", ".join(METHODS)),
        ("access-control-allow-headers", _PREFLIGHT_HEADERS),
        ("access-control-max-age", "600"),
    ], b""
