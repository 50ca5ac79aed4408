"""Header policy of the extension proxy: what goes to the guest, what comes back, request ids."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final, Protocol

from servicekit import new_request_id

from ._errors import InvalidRequest

FORWARDED_REQUEST_HEADERS: Final = frozenset(
    {"x-request-id", "accept", "content-type", "accept-encoding", "user-agent", "accept-language"}
)
"""Client headers the guest sees; credentials (authorization, cookies) and everything else stay here."""

HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)

RESPONSE_HEADERS: Final = frozenset(
    {
        "content-type",
        "content-encoding",
        "content-language",
        "content-disposition",
        "cache-control",
        "etag",
        "expires",
        "last-modified",
        "location",
        "vary",
    }
)
"""Guest response headers kept besides ``x-*`` ones (content-encoding so compressed bodies stay readable)."""

SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    # Guest bodies are served from the gateway's origin, where sessions live: never let one run as a page.
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
}

REQUEST_ID_HEADER: Final = "x-request-id"


class HeaderLookup(Protocol):
    """Case-insensitive header access (werkzeug ``Headers``) or a lower-case ``dict``."""

    def get(self, key: str, /) -> str | None: ...
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_IDEMPOTENCY_RE: Final = re.compile(r"[\x21-\x7e]{1,255}")
_BAD_VALUE_RE: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HEADER_NAME_RE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")


def request_id(headers: HeaderLookup) -> str:
    """The client's ``x-request-id`` when well-formed, else a fresh one.

    Raises:
        InvalidRequest: the header is present but malformed (1-128 of ``A-Za-z0-9._:-``).
    """
    given = headers.get(REQUEST_ID_HEADER)
    if given is None:
        return new_request_id()
    if not _TOKEN_RE.fullmatch(given):
        raise InvalidRequest({"headers.x-request-id": "must be 1-128 characters of A-Z a-z 0-9 . _ : -"},
                             code="invalid_request_id")
    return given


def idempotency_key(headers: HeaderLookup) -> str | None:
    """The client's ``Idempotency-Key`` (or ``x-idempotency-key``), if any.

    Raises:
        InvalidRequest: the key is not 1-255 visible ASCII characters.
    """
    given = headers.get("idempotency-key") or headers.get("x-idempotency-key")
    if given is None:
        return None
    if not _IDEMPOTENCY_RE.fullmatch(given):
        raise InvalidRequest({"headers.idempotency-key": "must be 1-255 visible ASCII characters"})
    return given


def forward_request_headers(headers: Iterable[tuple[str, str]], *, request_id: str) -> dict[str, str]:
    """The headers the guest receives: the allowlist only, lower-cased, with the request id set."""
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key in FORWARDED_REQUEST_HEADERS and key != REQUEST_ID_HEADER:
            out[key] = f"{out[key]}, {value}" if key in out else value
    out[REQUEST_ID_HEADER] = request_id
    return out


def filter_response_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """Guest response headers that may reach the client.

    Kept: :data:`RESPONSE_HEADERS` and ``x-*`` (not ``x-alga-*``, not the request id, which the gateway
    sets). Dropped: hop-by-hop, ``set-cookie`` (the gateway's origin holds sessions), anything with a
    malformed name or a control character in its value.
    """
    out: list[tuple[str, str]] = []
    for name, value in headers.items():
        key = name.lower()
        if not isinstance(value, str) or not _HEADER_NAME_RE.fullmatch(key) or _BAD_VALUE_RE.search(value):
            continue
        if key in HOP_BY_HOP or key == "set-cookie" or key in SECURITY_HEADERS:
            continue
        if key.startswith("x-alga-") or key == REQUEST_ID_HEADER:
            continue
        if key in RESPONSE_HEADERS or key.startswith("x-"):
            out.append((key, value))
    return out
