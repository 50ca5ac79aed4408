"""Seal a tenant's secret map to the runner's X25519 key, and open it again.

An envelope is ``{"ciphertext_b64", "algorithm", "version": "1", "expires_at"?}``. ``version`` is the version of
this object's shape (unchanged since v1); the algorithm's own version is the suffix of its name:

* ``hpke-x25519-chacha20poly1305:v2`` (written by :func:`seal`): HPKE, RFC 9180 (see :mod:`._hpke`);
* ``x25519-chacha20poly1305:v1``: the earlier hand-built ECIES box, still opened (see :mod:`._x25519_v1`);
* ``inline/base64``: the reference's unencrypted envelope, opened, never written.

Both sealed algorithms bind the envelope to its context, the JSON array
``[label, algorithm, tenant_id, extension_id, expires_at]`` (HPKE's ``info`` in v2, the AEAD's associated data
in v1), so an envelope copied to another tenant or extension, or whose ``expires_at`` was edited, fails
authentication instead of opening.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from . import _hpke, _x25519_v1
from ._errors import EnvelopeExpired, EnvelopeInvalid, KeyInvalid, UnsupportedAlgorithm
from ._keys import b64, load_private, load_public

ALGORITHM: Final = _hpke.ALGORITHM
"""The sealed-box algorithm this package writes."""

INLINE_ALGORITHM: Final = "inline/base64"
"""The reference's unencrypted envelope (base64 of a JSON string map); opened, never written."""

ENVELOPE_VERSION: Final = "1"

DEFAULT_MAX_ENVELOPE_BYTES: Final = 1024 * 1024
"""Largest ``ciphertext_b64`` accepted by :func:`open_envelope` (and produced by :func:`seal`)."""

_Opener = Callable[[bytes, X25519PrivateKey, bytes], bytes]

# Every sealed algorithm that opens, with the label that starts its context.
_SEALED: Final[Mapping[str, tuple[str, _Opener]]] = {
    _hpke.ALGORITHM: (_hpke.CONTEXT_LABEL, _hpke.open_sealed),
    _x25519_v1.ALGORITHM: (_x25519_v1.CONTEXT_LABEL, _x25519_v1.open_sealed),
}


def seal(
    secrets: Mapping[str, str],
    public_key_b64: str,
    *,
    tenant_id: str,
    extension_id: str,
    expires_at: datetime | None = None,
    max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
) -> dict[str, str]:
    """Seal ``secrets`` so that only the holder of the runner's private key can open them (:data:`ALGORITHM`).

    Args:
        secrets: the map of secret names to values (strings only).
        public_key_b64: the runner's X25519 public key (``RUNNER_SECRETS_PUBLIC_KEY``).
        tenant_id: the tenant the envelope is bound to.
        extension_id: the extension the envelope is bound to.
        expires_at: optional timezone-aware expiry; the envelope does not open after it.
        max_envelope_bytes: refuse maps whose envelope would exceed this many base64 characters.

    Returns:
        ``{"ciphertext_b64", "algorithm", "version", "expires_at"?}``.

    Raises:
        EnvelopeInvalid: a key or value is not a string, or the map is too big.
        KeyInvalid: the public key is malformed.
        ValueError: ``expires_at`` is naive, or the tenant/extension id is empty.
    """
    plaintext = _encode_map(secrets)
    recipient = load_public(public_key_b64)
    if not tenant_id or not extension_id:
        raise ValueError("tenant_id and extension_id must be non-empty")
    expiry = _format_expiry(expires_at) if expires_at is not None else None

    context = _context(_hpke.CONTEXT_LABEL, ALGORITHM, tenant_id, extension_id, expiry)
    encoded = b64(_hpke.seal(plaintext, recipient, context))
    if len(encoded) > max_envelope_bytes:
        raise EnvelopeInvalid(f"sealed secrets exceed {max_envelope_bytes} bytes")

    envelope = {"ciphertext_b64": encoded, "algorithm": ALGORITHM, "version": ENVELOPE_VERSION}
    if expiry is not None:
        envelope["expires_at"] = expiry
    return envelope


def open_envelope(
    envelope: Mapping[str, object],
    private_key_b64: str | None,
    *,
    tenant_id: str,
    extension_id: str,
    now: datetime | None = None,
    max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
) -> dict[str, str]:
    """Open a sealed (v2 or v1) or the reference's inline envelope and return the secret map.

    Args:
        envelope: the envelope object as stored/sent (``ciphertext_b64``, ``algorithm``, ``version``,
            ``expires_at``; the reference's ``key_path``/``mount`` are ignored).
        private_key_b64: the runner's X25519 private key; may be ``None`` for inline envelopes only.
        tenant_id: the tenant of the invocation; must be the one the envelope was sealed for.
        extension_id: the extension of the invocation; likewise.
        now: the current time (timezone-aware); defaults to the system clock.
        max_envelope_bytes: refuse larger ``ciphertext_b64`` values without decoding them.

    Raises:
        EnvelopeInvalid: malformed envelope or plaintext.
        EnvelopeExpired: ``expires_at`` has passed.
        UnsupportedAlgorithm: an algorithm or version other than those this package knows.
        DecryptFailed: the ciphertext does not authenticate (wrong key, tampering, other context).
        KeyInvalid: the private key is malformed or missing for a sealed envelope.
    """
    if not isinstance(envelope, Mapping):
        raise EnvelopeInvalid("envelope must be an object")
    # The reference writes inline envelopes without an algorithm; absent means inline.
    algorithm = envelope.get("algorithm", INLINE_ALGORITHM)
    if not isinstance(algorithm, str):
        raise EnvelopeInvalid("algorithm must be a string")
    ciphertext_b64 = envelope.get("ciphertext_b64")
    if not isinstance(ciphertext_b64, str):
        raise EnvelopeInvalid("ciphertext_b64 must be a string")
    if len(ciphertext_b64) > max_envelope_bytes:
        raise EnvelopeInvalid(f"ciphertext_b64 exceeds {max_envelope_bytes} bytes")
    expiry_text = envelope.get("expires_at")
    if expiry_text is not None and not isinstance(expiry_text, str):
        raise EnvelopeInvalid("expires_at must be an RFC 3339 string")
    if algorithm not in _SEALED and algorithm != INLINE_ALGORITHM:
        raise UnsupportedAlgorithm(f"unsupported envelope algorithm {algorithm!r}")

    if expiry_text is not None:
        current = now if now is not None else datetime.now(UTC)
        if current.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if current >= _parse_expiry(expiry_text):
            raise EnvelopeExpired("secret envelope has expired")

    raw = _unb64(ciphertext_b64, "ciphertext_b64")
    if algorithm == INLINE_ALGORITHM:
        return _decode_map(raw)

    version = envelope.get("version")
    if version is not None and str(version) != ENVELOPE_VERSION:
        raise UnsupportedAlgorithm(f"unsupported envelope version {version!r}")
    if private_key_b64 is None:
        raise KeyInvalid("no private key configured to open sealed secrets")
    private = load_private(private_key_b64)
    label, open_sealed = _SEALED[algorithm]
    plaintext = open_sealed(raw, private, _context(label, algorithm, tenant_id, extension_id, expiry_text))
    return _decode_map(plaintext)


def _context(label: str, algorithm: str, tenant_id: str, extension_id: str, expires_at: str | None) -> bytes:
    # A JSON array is an unambiguous join: no choice of ids can make two contexts encode alike.
    return json.dumps(
        [label, algorithm, tenant_id, extension_id, expires_at], separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")


def _encode_map(secrets: Mapping[str, str]) -> bytes:
    if not isinstance(secrets, Mapping):
        raise EnvelopeInvalid("secrets must be a map of strings")
    for name, value in secrets.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise EnvelopeInvalid("secret names and values must be strings")
    return json.dumps(dict(secrets), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _decode_map(raw: bytes) -> dict[str, str]:
    try:
        decoded = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise EnvelopeInvalid("envelope payload is not a JSON object") from None
    if not isinstance(decoded, dict):
        raise EnvelopeInvalid("envelope payload is not a JSON object")
    for value in decoded.values():
        if not isinstance(value, str):
            # Name the problem, never the value: it is a secret.
            raise EnvelopeInvalid("envelope payload values must all be strings")
    return decoded


def _format_expiry(expires_at: datetime) -> str:
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    utc = expires_at.astimezone(UTC)
    spec = "seconds" if utc.microsecond == 0 else "microseconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _parse_expiry(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise EnvelopeInvalid("expires_at is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None or "T" not in text.upper():
        raise EnvelopeInvalid("expires_at must be an RFC 3339 timestamp with a UTC offset")
    return parsed


def _unb64(value: str, field: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeInvalid(f"{field} is not valid base64") from None
