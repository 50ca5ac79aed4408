"""Seal a tenant's secret map to the runner's X25519 key, and open it again.

Construction of ``x25519-chacha20poly1305:v1`` (an ECIES-style box):

* a fresh ephemeral X25519 key pair per envelope; ``shared = X25519(eph_priv, recipient_pub)``;
* ``key = HKDF-SHA256(shared, salt = eph_pub || recipient_pub, info = b"alga-ext-secrets:v1", 32 bytes)``;
* ``ChaCha20Poly1305(key)`` with a random 12-byte nonce over the JSON of the map, with associated data that
  binds the algorithm, the tenant, the extension and the expiry (see :func:`_associated_data`);
* ``ciphertext_b64 = base64(eph_pub || nonce || ciphertext+tag)``.

Binding the context into the associated data means an envelope copied to another tenant or extension, or whose
``expires_at`` was edited, fails authentication instead of opening.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._errors import DecryptFailed, EnvelopeExpired, EnvelopeInvalid, KeyInvalid, UnsupportedAlgorithm

ALGORITHM: Final = "x25519-chacha20poly1305:v1"
"""The sealed-box algorithm this package writes."""

INLINE_ALGORITHM: Final = "inline/base64"
"""The reference's unencrypted envelope (base64 of a JSON string map); opened, never written."""

ENVELOPE_VERSION: Final = "1"

DEFAULT_MAX_ENVELOPE_BYTES: Final = 1024 * 1024
"""Largest ``ciphertext_b64`` accepted by :func:`open_envelope` (and produced by :func:`seal`)."""

_HKDF_INFO: Final = b"alga-ext-secrets:v1"
_AAD_LABEL: Final = "alga-ext-secrets-aad:v1"
_KEY_BYTES: Final = 32
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16


def generate_keypair() -> tuple[str, str]:
    """Make a new X25519 key pair for the runner.

    Returns:
        ``(private_b64, public_b64)``: the raw 32-byte keys, base64 encoded.
    """
    private = X25519PrivateKey.generate()
    private_raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return _b64(private_raw), _b64(_raw_public(private.public_key()))


def public_key_from_private(private_key_b64: str) -> str:
    """Return the base64 public key that belongs to ``private_key_b64``.

    Raises:
        KeyInvalid: the private key is not 32 raw bytes in base64.
    """
    return _b64(_raw_public(_load_private(private_key_b64).public_key()))


def seal(
    secrets: Mapping[str, str],
    public_key_b64: str,
    *,
    tenant_id: str,
    extension_id: str,
    expires_at: datetime | None = None,
    max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
) -> dict[str, str]:
    """Seal ``secrets`` so that only the holder of the runner's private key can open them.

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
    recipient = _load_public(public_key_b64)
    if not tenant_id or not extension_id:
        raise ValueError("tenant_id and extension_id must be non-empty")
    expiry = _format_expiry(expires_at) if expires_at is not None else None

    ephemeral = X25519PrivateKey.generate()
    eph_pub = _raw_public(ephemeral.public_key())
    key = _derive_key(ephemeral.exchange(recipient), eph_pub, _raw_public(recipient))
    nonce = os.urandom(_NONCE_BYTES)
    aad = _associated_data(ALGORITHM, tenant_id, extension_id, expiry)
    ciphertext = ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)
    encoded = _b64(eph_pub + nonce + ciphertext)
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
    """Open a sealed (or the reference's inline) envelope and return the secret map.

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
        UnsupportedAlgorithm: an algorithm or version other than the two this package knows.
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
    if algorithm not in (ALGORITHM, INLINE_ALGORITHM):
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
    private = _load_private(private_key_b64)
    if len(raw) < _KEY_BYTES + _NONCE_BYTES + _TAG_BYTES:
        raise EnvelopeInvalid("ciphertext is too short")
    eph_pub, nonce, ciphertext = (
        raw[:_KEY_BYTES],
        raw[_KEY_BYTES : _KEY_BYTES + _NONCE_BYTES],
        raw[_KEY_BYTES + _NONCE_BYTES :],
    )
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(eph_pub))
    except ValueError as exc:  # an all-zero shared secret (low-order point) is refused by cryptography
        raise DecryptFailed("secret envelope does not open with this key") from exc
    key = _derive_key(shared, eph_pub, _raw_public(private.public_key()))
    aad = _associated_data(ALGORITHM, tenant_id, extension_id, expiry_text)
    try:
        plaintext = ChaCha20Poly1305(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise DecryptFailed("secret envelope does not open with this key and context") from None
    return _decode_map(plaintext)


def _associated_data(algorithm: str, tenant_id: str, extension_id: str, expires_at: str | None) -> bytes:
    # A JSON array is an unambiguous join: no choice of ids can make two contexts encode alike.
    return json.dumps(
        [_AAD_LABEL, algorithm, tenant_id, extension_id, expires_at], separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")


def _derive_key(shared: bytes, eph_pub: bytes, recipient_pub: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=eph_pub + recipient_pub, info=_HKDF_INFO)
    return hkdf.derive(shared)


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


def _load_public(public_key_b64: str) -> X25519PublicKey:
    return X25519PublicKey.from_public_bytes(_key_bytes(public_key_b64, "public"))


def _load_private(private_key_b64: str) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(_key_bytes(private_key_b64, "private"))


def _key_bytes(value: str, kind: str) -> bytes:
    if not isinstance(value, str):
        raise KeyInvalid(f"{kind} key must be a base64 string")
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyInvalid(f"{kind} key is not valid base64") from None
    if len(raw) != _KEY_BYTES:
        raise KeyInvalid(f"{kind} key must be {_KEY_BYTES} raw bytes, got {len(raw)}")
    return raw


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: str, field: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeInvalid(f"{field} is not valid base64") from None
