"""Sealed secret envelopes: the gateway seals a tenant's secrets to the runner's X25519 key; the runner opens them.

New envelopes are HPKE (RFC 9180, ``hpke-x25519-chacha20poly1305:v2``); ``x25519-chacha20poly1305:v1`` envelopes
and the reference's ``inline/base64`` still open.

Public API::

    generate_keypair() -> (private_b64, public_b64)
    public_key_from_private(private_b64) -> public_b64
    seal(secrets, public_key_b64, *, tenant_id, extension_id, expires_at=None) -> envelope dict
    open_envelope(envelope, private_key_b64, *, tenant_id, extension_id, now=None) -> dict[str, str]
"""

from ._envelope import (
    ALGORITHM,
    DEFAULT_MAX_ENVELOPE_BYTES,
    ENVELOPE_VERSION,
    INLINE_ALGORITHM,
    open_envelope,
    seal,
)
from ._errors import (
    DecryptFailed,
    EnvelopeExpired,
    EnvelopeInvalid,
    KeyInvalid,
    SealingError,
    UnsupportedAlgorithm,
)
from ._keys import generate_keypair, public_key_from_private

__all__ = [
    "ALGORITHM",
    "DEFAULT_MAX_ENVELOPE_BYTES",
    "ENVELOPE_VERSION",
    "INLINE_ALGORITHM",
    "DecryptFailed",
    "EnvelopeExpired",
    "EnvelopeInvalid",
    "KeyInvalid",
    "SealingError",
    "UnsupportedAlgorithm",
    "generate_keypair",
    "open_envelope",
    "public_key_from_private",
    "seal",
]
