"""httpx plumbing shared by the capabilities' backends: capped body reads and the platform's internal-API client."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, final
from urllib.parse import quote

import httpx
import trio

from ..engine import HostScope
from ._errors import BodyTooLarge, InternalApiError

__all__ = [
    "DEFAULT_INTERNAL_TIMEOUT",
    "DEFAULT_MAX_INTERNAL_RESPONSE_BYTES",
    "InternalApi",
    "InternalReply",
    "path_segment",
    "read_capped",
    "scope_headers",
]

DEFAULT_INTERNAL_TIMEOUT: Final = 10.0
DEFAULT_MAX_INTERNAL_RESPONSE_BYTES: Final = 16 * 1024 * 1024
"""Room for a full storage page (100 values of 64 KiB, base64) with margin."""


@dataclass(frozen=True, slots=True)
class InternalReply:
    """An answer of the internal API: the status and the parsed JSON body (``None`` when empty or not JSON)."""

    status: int
    body: Any


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """Read a streamed response's raw body, refusing it past ``max_bytes``.

    Raises:
        BodyTooLarge: the declared length or the bytes received exceed ``max_bytes``.
    """
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge
    chunks: list[bytes] = []
    received = 0
    over = False
    # Leaving httpx's nested body generators early would leave them to the garbage collector. Instead, past
    # the cap, cancel: the next read inside them raises Cancelled, which finishes every one of them now.
    with trio.CancelScope() as reading:
        async for chunk in response.aiter_raw():
            if over:
                continue
            received += len(chunk)
            if received > max_bytes:
                over = True
                reading.cancel()
                continue
            chunks.append(chunk)
    if over:
        raise BodyTooLarge
    return b"".join(chunks)


def path_segment(value: str) -> str:
    """``value`` percent-encoded as one URL path segment: ``/``, ``%`` and dot segments cannot escape it."""
    # Dots too: URL normalization would otherwise treat an id of ".." as a step up the path.
    return quote(value, safe="").replace(".", "%2E")


def scope_headers(scope: HostScope) -> dict[str, str]:
    """Correlation headers every upstream call carries."""
    headers = {"x-alga-tenant": scope.tenant_id, "x-alga-extension": scope.extension_id}
    if scope.request_id:
        headers["x-request-id"] = scope.request_id
    if scope.install_id:
        headers["x-ext-install-id"] = scope.install_id
    if scope.version_id:
        headers["x-ext-version-id"] = scope.version_id
    return headers


@final
class InternalApi:
    """POSTs JSON to the platform's ``/api/internal/...`` routes with ``x-runner-auth``. Connections are pooled.

    Args:
        base_url: the platform origin (a trailing ``/`` is ignored).
        auth_key: the ``x-runner-auth`` value; omitted when ``None``.
        timeout: per call, cut further by the invocation deadline.
        max_response_bytes: larger answers fail as :class:`InternalApiError`.
    """

    def __init__(
        self,
        base_url: str,
        auth_key: str | None,
        *,
        timeout: float = DEFAULT_INTERNAL_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_INTERNAL_RESPONSE_BYTES,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._auth_key = auth_key
        self._timeout = timeout
        self._max_response_bytes = max_response_bytes
        self._client: httpx.AsyncClient | None = None

    async def post(self, scope: HostScope, path: str, payload: dict[str, Any]) -> InternalReply:
        """POST ``payload`` to ``base + path`` (``path`` already encoded) and return the status and JSON.

        Raises:
            InternalApiError: transport failure, timeout (or no time left), or an oversized answer.
        """
        budget = scope.bounded(self._timeout)
        if budget <= 0:
            raise InternalApiError("invocation deadline passed")
        headers = {"content-type": "application/json", "accept": "application/json", **scope_headers(scope)}
        if self._auth_key:
            headers["x-runner-auth"] = self._auth_key
        content = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        request = self._get_client().build_request(
            "POST", self._base + path, headers=headers, content=content, timeout=httpx.Timeout(budget)
        )
        try:
            with trio.fail_after(budget):
                response = await self._get_client().send(request, stream=True)
                try:
                    raw = await read_capped(response, self._max_response_bytes)
                finally:
                    await response.aclose()
        except trio.TooSlowError:
            raise InternalApiError("timed out") from None
        except BodyTooLarge:
            raise InternalApiError("answer too large") from None
        except httpx.HTTPError as exc:
            raise InternalApiError(f"transport failure ({type(exc).__name__})") from None
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = None
        return InternalReply(response.status_code, body)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            # trust_env=False: no proxy or netrc credentials picked up from the environment for internal calls.
            self._client = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        return self._client
