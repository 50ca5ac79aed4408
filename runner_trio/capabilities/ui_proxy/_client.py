"""``ui-proxy.call-route``: an extension calling routes of its host app (``UI_PROXY_BASE_URL``).

The URL is the base plus the route when the route starts with ``/api/`` (a platform API, as is), else the base
plus ``/{extensionId}/`` plus the route (the extension's own routes). A query string in the route is kept.
GET without a payload, POST with one (the payload bytes as the body, ``content-type: application/json``).
Headers: ``authorization: Bearer UI_PROXY_AUTH_KEY`` when set, ``x-alga-tenant``, ``x-alga-extension``,
``x-request-id``, ``x-ext-install-id``/``x-ext-version-id`` when known, ``x-user-id``/``x-user-email`` for the
end user, and ``x-api-key`` when the caller passes one (the reference takes it from the ``api_key`` secret).

Route checks (``bad-request``): empty, control characters, backslashes, ``#``, and ``.``/``..`` segments, also
percent-encoded (``%2e``), or a segment hiding a ``/`` or ``\\`` as ``%2f``/``%5c``. Empty segments (``a//b``) are
dropped, as the reference does.
Answers: 2xx -> the body; 404 -> ``route-not-found``; 401/403/429 -> ``denied``; other 4xx -> ``bad-request``
(as the reference); 3xx, 5xx, transport failure, timeout, a body over the cap -> ``internal``.
"""

from __future__ import annotations

from typing import Final, final
from urllib.parse import unquote

import httpx
import trio

from ...engine import HostScope
from .._errors import BodyTooLarge, HostCallError
from .._httpio import path_segment, read_capped, scope_headers

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_UI_PROXY_TIMEOUT",
    "UiProxyClient",
]

DEFAULT_UI_PROXY_TIMEOUT: Final = 5.0
"""``UI_PROXY_TIMEOUT_MS`` default, in seconds."""
DEFAULT_MAX_RESPONSE_BYTES: Final = 10 * 1024 * 1024
DEFAULT_MAX_PAYLOAD_BYTES: Final = 10 * 1024 * 1024
_MAX_ROUTE_CHARS: Final = 2048
_STATUS_ERRORS: Final = {404: "route-not-found", 401: "denied", 403: "denied", 429: "denied"}


@final
class UiProxyClient:
    """Forwards ``call-route`` to the host app. One per app; connections are pooled.

    Args:
        base_url: ``UI_PROXY_BASE_URL``.
        auth_key: ``UI_PROXY_AUTH_KEY``, sent as a bearer token when set.
        timeout: ``UI_PROXY_TIMEOUT_MS`` in seconds, cut further by the invocation deadline.
        max_response_bytes: larger answers are refused (``internal``).
        max_payload_bytes: larger payloads are refused (``bad-request``).
    """

    def __init__(
        self,
        base_url: str,
        auth_key: str | None = None,
        timeout: float = DEFAULT_UI_PROXY_TIMEOUT,
        *,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._auth_key = auth_key
        self._timeout = timeout
        self._max_response_bytes = max_response_bytes
        self._max_payload_bytes = max_payload_bytes
        self._client: httpx.AsyncClient | None = None

    def route_url(self, scope: HostScope, route: str) -> str:
        """The upstream URL for ``route``.

        Raises:
            HostCallError: ``bad-request`` for a route that fails the checks above.
        """
        if not isinstance(route, str):
            raise TypeError("route must be a string")
        route = route.strip()
        if not route or len(route) > _MAX_ROUTE_CHARS:
            raise HostCallError("bad-request", "empty or over-long route")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in route) or "\\" in route or "#" in route:
            raise HostCallError("bad-request", "route has forbidden characters")
        path, sep, query = route.partition("?")
        segments = [segment for segment in path.split("/") if segment]
        for segment in segments:
            decoded = unquote(segment)
            if decoded in (".", "..") or "/" in decoded or "\\" in decoded:
                raise HostCallError("bad-request", "route has a dot or encoded-slash segment")
        is_platform = bool(segments) and segments[0] == "api"
        prefix = "" if is_platform else "/" + path_segment(scope.extension_id)
        trailing = "/" if path.endswith("/") and segments else ""
        return f"{self._base}{prefix}/{'/'.join(segments)}{trailing}" + (f"?{query}" if sep and query else "")

    async def call_route(
        self,
        scope: HostScope,
        route: str,
        payload: bytes | None,
        *,
        api_key: str | None = None,
    ) -> bytes:
        """Call ``route`` for the guest and return the answer's body.

        Raises:
            HostCallError: ``route-not-found``, ``denied``, ``bad-request`` or ``internal``.
        """
        url = self.route_url(scope, route)
        if payload is not None and len(payload) > self._max_payload_bytes:
            raise HostCallError("bad-request", "payload over the size cap")
        headers = scope_headers(scope)
        if self._auth_key:
            headers["authorization"] = f"Bearer {self._auth_key}"
        if api_key:
            headers["x-api-key"] = api_key
        if scope.user is not None:
            headers["x-user-id"] = scope.user.user_id
            if scope.user.user_email:
                headers["x-user-email"] = scope.user.user_email
        if payload is not None:
            headers["content-type"] = "application/json"
        budget = scope.bounded(self._timeout)
        if budget <= 0:
            raise HostCallError("internal", "invocation deadline passed")
        client = self._get_client()
        try:
            request = client.build_request(
                "POST" if payload is not None else "GET",
                url,
                headers=headers,
                content=bytes(payload) if payload is not None else None,
                timeout=httpx.Timeout(budget),
            )
        except (httpx.InvalidURL, ValueError):
            raise HostCallError("bad-request", "route does not make a valid URL") from None
        try:
            with trio.fail_after(budget):
                response = await client.send(request, stream=True)
                try:
                    body = await read_capped(response, self._max_response_bytes)
                finally:
                    await response.aclose()
        except trio.TooSlowError:
            raise HostCallError("internal", "ui-proxy call timed out") from None
        except BodyTooLarge:
            raise HostCallError("internal", "ui-proxy answer over the size cap") from None
        except httpx.HTTPError as exc:
            raise HostCallError("internal", f"ui-proxy transport failure ({type(exc).__name__})") from None
        status = response.status_code
        if 200 <= status < 300:
            return body
        variant = _STATUS_ERRORS.get(status, "bad-request" if 400 <= status < 500 else "internal")
        raise HostCallError(variant, f"ui-proxy route answered {status}")

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def __aenter__(self) -> UiProxyClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        return self._client
