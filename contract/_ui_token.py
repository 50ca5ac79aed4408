"""Signed ``/ext-ui`` URLs: the gateway vouches for (tenant, extension, hash) until an expiry, the runner checks.

The gateway frames an install's UI at ``/ext-ui/{extension}/sha256:{hex}/~t/{token}/index.html``. The token
is an HMAC-SHA256 (itsdangerous's :class:`~itsdangerous.Signer`, keyed by the shared ``EXT_UI_SIGNING_KEY``
and a fixed salt) over ``[tenant, extension, hex, expiry]``: the runner verifies it with
no round trip to the gateway, and a token for another extension, another hash, another key or past its expiry
verifies as nothing. Being a path segment, the token survives the relative URLs of the page's own assets
(``app.js`` resolves to ``…/~t/{token}/app.js``).

Expiry is Unix seconds: the gateway's and the runners' clocks must agree to within a small part of the TTL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Callable
from typing import Final, final

from itsdangerous import BadSignature, Signer

__all__ = ["UI_TOKEN_SEGMENT", "UiUrlSigner", "signed_ui_path", "split_ui_token"]

UI_TOKEN_SEGMENT: Final = "~t"  # noqa: S105 (a path segment, not a secret)
"""The path segment after the hash that says "the next segment is a token"."""
_SALT: Final = b"alga-ext-ui-url:v1"
_MAX_TOKEN_LENGTH: Final = 1024


@final
class UiUrlSigner:
    """Issues and verifies the tokens of signed ``/ext-ui`` URLs with one key.

    Args:
        key: ``EXT_UI_SIGNING_KEY``, the same on the gateway and every runner.
        clock: Unix seconds (tests move it).
    """

    def __init__(self, key: str, *, clock: Callable[[], float] = time.time) -> None:
        self._signer = Signer(key.encode("utf-8"), salt=_SALT, digest_method=hashlib.sha256)
        self._clock = clock

    def __repr__(self) -> str:
        return "UiUrlSigner(<key redacted>)"

    def issue(self, *, tenant: str, extension: str, hex_digest: str, ttl_s: float) -> str:
        """A token saying that ``tenant`` may load ``extension``'s UI at ``hex_digest`` for ``ttl_s`` seconds."""
        expires = int(self._clock() + ttl_s)
        payload = json.dumps([tenant, extension, hex_digest, expires], separators=(",", ":")).encode("utf-8")
        return self._signer.sign(base64.urlsafe_b64encode(payload).rstrip(b"=")).decode("ascii")

    def verify(self, token: str, *, extension: str, hex_digest: str) -> str | None:
        """The tenant a valid, unexpired token for (``extension``, ``hex_digest``) names; None for any other."""
        if not token or len(token) > _MAX_TOKEN_LENGTH or not token.isascii():
            return None
        try:
            raw = self._signer.unsign(token.encode("ascii"))
            payload = json.loads(base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4)))
        except (BadSignature, binascii.Error, ValueError):
            return None
        match payload:
            case [str(tenant), str(ext), str(digest), int(expires)] if ext == extension and digest == hex_digest:
                return tenant if self._clock() < expires else None
        return None


def signed_ui_path(extension: str, hex_digest: str, token: str, path: str = "index.html") -> str:
    """``/ext-ui/{extension}/sha256:{hex}/~t/{token}/{path}`` (``path`` as given: already URL-safe)."""
    return f"/ext-ui/{extension}/sha256:{hex_digest}/{UI_TOKEN_SEGMENT}/{token}/{path.lstrip('/')}"


def split_ui_token(rest: str) -> tuple[str | None, str, bool]:
    """Split the raw path after the hash into (token or None, the path after it, whether a ``/`` followed it).

    ``"~t/abc/app.js"`` -> ``("abc", "app.js", True)``; ``"~t/abc"`` -> ``("abc", "", False)``;
    ``"app.js"`` -> ``(None, "app.js", True)``.
    """
    prefix = f"{UI_TOKEN_SEGMENT}/"
    if not rest.startswith(prefix):
        return None, rest, True
    token, slash, tail = rest[len(prefix):].partition("/")
    return token, tail, bool(slash)
