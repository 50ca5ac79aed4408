"""Opening an invocation's secret envelope into the map ``secrets.get`` answers from.

Envelopes (``secret_envelope`` of ``/v1/execute``) by ``algorithm``:

* ``hpke-x25519-chacha20poly1305:v2`` (HPKE) or ``x25519-chacha20poly1305:v1``: sealed to the runner's X25519 key
  (:mod:`sealing`; needs the private key);
* ``inline/base64`` or no algorithm: the reference's base64 of a JSON string map, not encrypted; refused
  (``plaintext_refused``) unless plaintext is allowed (``RUNNER_ALLOW_PLAINTEXT_SECRETS``; never in production);
* ``vault-transit:v1`` (any ``vault-transit*``): ``POST {VAULT_ADDR}/v1/{mount or "transit"}/decrypt/{key_path}``
  with ``X-Vault-Token`` (and ``X-Vault-Namespace`` when set) and ``{"ciphertext": ciphertext_b64}``; the answer's
  ``data.plaintext`` is base64 of the JSON map. Only when ``VAULT_ADDR`` is configured.

``expires_at`` (RFC 3339) is enforced: an expired envelope is not opened, and every ``get`` then answers
``expired`` (``list-keys`` an empty list), also when it expires during the invocation. Opened maps are cached
for at most ``cache_ttl`` (30 s), keyed by tenant, extension and the SHA-256 of the envelope, and never past
the envelope's expiry. An envelope that cannot be opened raises :class:`SecretEnvelopeError` (the runner
answers ``secret_decrypt_failed``). Values never appear in logs, exceptions or reprs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, final

import httpx
import trio
from cachetools import TLRUCache

import sealing

from ...engine import HostScope
from .._errors import BodyTooLarge, HostCallError, SecretEnvelopeError
from .._httpio import path_segment, read_capped

__all__ = [
    "DEFAULT_CACHE_TTL",
    "DEFAULT_MAX_CACHE_ENTRIES",
    "DEFAULT_VAULT_TIMEOUT",
    "SecretMap",
    "SecretResolver",
]

DEFAULT_CACHE_TTL: Final = 30.0
DEFAULT_MAX_CACHE_ENTRIES: Final = 1024
DEFAULT_VAULT_TIMEOUT: Final = 5.0
_MAX_VAULT_RESPONSE_BYTES: Final = 2 * 1024 * 1024
_VAULT_PREFIX: Final = "vault-transit"
_ENVELOPE_FIELDS: Final = ("ciphertext_b64", "algorithm", "version", "expires_at", "key_path", "mount")

WallClock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@final
class SecretMap:
    """The opened secrets of one invocation. ``get``/``list_keys`` are what ``secrets.*`` answer.

    The repr names how many keys there are, never a value.
    """

    __slots__ = ("_expires_at", "_values", "_wall_clock")

    def __init__(
        self, values: Mapping[str, str], *, expires_at: datetime | None = None, wall_clock: WallClock = _utcnow
    ) -> None:
        self._values = dict(values)
        self._expires_at = expires_at
        self._wall_clock = wall_clock

    @classmethod
    def expired_map(cls) -> SecretMap:
        """A map whose every ``get`` answers ``expired``."""
        return cls({}, expires_at=datetime.min.replace(tzinfo=UTC))

    @property
    def expired(self) -> bool:
        return self._expires_at is not None and self._wall_clock() >= self._expires_at

    async def get(self, key: str) -> str:
        """The value of ``key``.

        Raises:
            HostCallError: ``expired`` past the envelope's expiry, ``missing`` for an unknown key.
        """
        if self.expired:
            raise HostCallError("expired", "secret envelope has expired")
        value = self._values.get(key)
        if value is None:
            raise HostCallError("missing", "no secret by that name")
        return value

    async def list_keys(self) -> list[str]:
        """The secret names, sorted; empty once expired."""
        return [] if self.expired else sorted(self._values)

    def __repr__(self) -> str:
        return f"SecretMap(<{len(self._values)} values redacted>{', expired' if self.expired else ''})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("SecretMap is not picklable: it holds secret values")


@final
class SecretResolver:
    """Opens secret envelopes for invocations, with a short cache. One per app.

    Args:
        private_key_b64: ``RUNNER_SECRETS_PRIVATE_KEY`` (sealed envelopes cannot be opened without it).
        vault_addr: ``VAULT_ADDR``; ``vault-transit`` envelopes are refused when ``None``.
        vault_token: the Vault token sent as ``X-Vault-Token``.
        vault_namespace: sent as ``X-Vault-Namespace`` when set.
        allow_plaintext: whether ``inline/base64`` envelopes (not encrypted) open; when not, one that carries
            secrets is refused (an empty one still means "no secrets").
        cache_ttl: longest time an opened map is reused (never past its envelope's expiry).
        max_cache_entries: the cache drops its oldest entries past this many.
        vault_timeout: per decrypt call, cut further by the invocation deadline.
        wall_clock: the current UTC time (for ``expires_at``); tests move it.
    """

    def __init__(
        self,
        private_key_b64: str | None,
        vault_addr: str | None = None,
        vault_token: str | None = None,
        *,
        vault_namespace: str | None = None,
        allow_plaintext: bool = True,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        max_cache_entries: int = DEFAULT_MAX_CACHE_ENTRIES,
        vault_timeout: float = DEFAULT_VAULT_TIMEOUT,
        wall_clock: WallClock = _utcnow,
    ) -> None:
        self._private_key = private_key_b64
        self._vault_addr = vault_addr.rstrip("/") if vault_addr else None
        self._vault_token = vault_token
        self._vault_namespace = vault_namespace
        self._allow_plaintext = allow_plaintext
        self._cache_ttl = cache_ttl
        self._vault_timeout = vault_timeout
        self._wall_clock = wall_clock
        # key -> (trio-clock instant the entry goes stale, values, expires_at); each entry lives until its own
        # instant (the cache TTL, or sooner when the envelope expires), least recently used dropped first.
        self._cache: TLRUCache[tuple[str, str, str], tuple[float, dict[str, str], datetime | None]] = TLRUCache(
            maxsize=max_cache_entries, ttu=lambda _key, value, _now: value[0], timer=trio.current_time
        )
        self.opened = 0
        """Envelopes actually opened (cache misses); for tests and statistics."""

    def __repr__(self) -> str:
        return f"SecretResolver(vault={'on' if self._vault_addr else 'off'}, cached={len(self._cache)})"

    async def resolve(self, scope: HostScope, envelope: Mapping[str, Any] | None) -> SecretMap:
        """Open ``envelope`` for ``scope``'s tenant and extension (``None``: no secrets, every get is ``missing``).

        Raises:
            SecretEnvelopeError: malformed, tampered, wrongly keyed, unsupported, or Vault failed.
        """
        if envelope is None:
            return SecretMap({})
        if not isinstance(envelope, Mapping):
            raise SecretEnvelopeError("envelope_invalid", "secret envelope must be an object")
        expires_at = _expiry(envelope.get("expires_at"))
        if expires_at is not None and self._wall_clock() >= expires_at:
            return SecretMap.expired_map()

        key = (scope.tenant_id, scope.extension_id, _digest(envelope))
        now = trio.current_time()
        cached = self._cache.get(key)
        if cached is not None and now < cached[0]:
            return SecretMap(cached[1], expires_at=cached[2], wall_clock=self._wall_clock)

        try:
            values = await self._open(scope, envelope)
        except sealing.EnvelopeExpired:  # expired between our check and the open
            return SecretMap.expired_map()
        self.opened += 1
        ttl = self._cache_ttl
        if expires_at is not None:
            ttl = min(ttl, (expires_at - self._wall_clock()).total_seconds())
        if ttl > 0:
            self._cache[key] = (trio.current_time() + ttl, values, expires_at)
        return SecretMap(values, expires_at=expires_at, wall_clock=self._wall_clock)

    def clear(self) -> None:
        """Forget every opened map (e.g. after a key rotation)."""
        self._cache.clear()

    async def _open(self, scope: HostScope, envelope: Mapping[str, Any]) -> dict[str, str]:
        algorithm = envelope.get("algorithm")
        ciphertext = envelope.get("ciphertext_b64")
        if isinstance(ciphertext, str) and not ciphertext.strip():
            return {}  # the reference sends an empty envelope for an install without secrets
        if isinstance(algorithm, str) and algorithm.strip().lower().startswith(_VAULT_PREFIX):
            return await self._open_vault(scope, envelope)
        inline = envelope.get("algorithm", sealing.INLINE_ALGORITHM) == sealing.INLINE_ALGORITHM
        if inline and not self._allow_plaintext:
            raise SecretEnvelopeError("plaintext_refused", "inline/base64 secret envelopes are not accepted here")
        try:
            return sealing.open_envelope(
                envelope,
                self._private_key,
                tenant_id=scope.tenant_id,
                extension_id=scope.extension_id,
                now=self._wall_clock(),
            )
        except sealing.EnvelopeExpired:
            raise
        except sealing.SealingError as exc:
            raise SecretEnvelopeError(exc.code, exc.message) from None

    async def _open_vault(self, scope: HostScope, envelope: Mapping[str, Any]) -> dict[str, str]:
        if self._vault_addr is None or not self._vault_token:
            raise SecretEnvelopeError("vault_not_configured", "vault-transit envelope but VAULT_ADDR is not set")
        key_path, mount = envelope.get("key_path"), envelope.get("mount") or "transit"
        ciphertext = envelope.get("ciphertext_b64")
        if not isinstance(key_path, str) or not key_path.strip("/") or not isinstance(mount, str):
            raise SecretEnvelopeError("envelope_invalid", "vault-transit envelope needs key_path (and a string mount)")
        if not isinstance(ciphertext, str):
            raise SecretEnvelopeError("envelope_invalid", "ciphertext_b64 must be a string")
        url = f"{self._vault_addr}/v1/{_path(mount)}/decrypt/{_path(key_path)}"
        headers = {"X-Vault-Token": self._vault_token}
        if self._vault_namespace:
            headers["X-Vault-Namespace"] = self._vault_namespace
        budget = scope.bounded(self._vault_timeout)
        try:
            with trio.fail_after(budget):
                async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as client:
                    request = client.build_request(
                        "POST", url, headers=headers, json={"ciphertext": ciphertext}, timeout=httpx.Timeout(budget)
                    )
                    response = await client.send(request, stream=True)
                    try:
                        raw = await read_capped(response, _MAX_VAULT_RESPONSE_BYTES)
                    finally:
                        await response.aclose()
        except (trio.TooSlowError, httpx.HTTPError, BodyTooLarge) as exc:
            raise SecretEnvelopeError("vault_failed", f"vault transit decrypt failed ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise SecretEnvelopeError("vault_failed", f"vault transit decrypt answered {response.status_code}")
        try:
            plaintext = json.loads(raw)["data"]["plaintext"]
            return _string_map(base64.b64decode(plaintext, validate=True))
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise SecretEnvelopeError("vault_failed", "vault transit answer is not a base64 JSON map") from None


def _string_map(raw: bytes) -> dict[str, str]:
    decoded = json.loads(raw.decode("utf-8"))
    if not isinstance(decoded, dict) or not all(isinstance(v, str) for v in decoded.values()):
        raise ValueError("not a map of strings")
    return decoded


def _path(value: str) -> str:
    return "/".join(path_segment(part) for part in value.strip("/").split("/"))


def _expiry(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SecretEnvelopeError("envelope_invalid", "expires_at must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise SecretEnvelopeError("envelope_invalid", "expires_at is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise SecretEnvelopeError("envelope_invalid", "expires_at needs a UTC offset")
    return parsed


def _digest(envelope: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        {name: envelope.get(name) for name in _ENVELOPE_FIELDS}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
