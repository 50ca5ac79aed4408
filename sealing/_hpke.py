"""``hpke-x25519-chacha20poly1305:v2``: the envelope algorithm this package writes, HPKE (RFC 9180) from cryptography.

The suite is fixed, not negotiated: base mode (``mode_base``, no sender authentication, no PSK) with
DHKEM(X25519, HKDF-SHA256) (KEM 0x0020), HKDF-SHA256 (KDF 0x0001) and ChaCha20-Poly1305 (AEAD 0x0003).
HPKE's single-shot ``Seal`` gives ``enc || ciphertext+tag``; ``enc`` is the sender's 32-byte ephemeral X25519
public key, so the envelope bytes have the same layout as v1's minus its separate nonce (HPKE derives it).

The envelope's context (tenant, extension, expiry) is HPKE's ``info``: it enters the key schedule, so an envelope
opened with another context derives another key and fails authentication like a wrong key would.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from ._errors import DecryptFailed, EnvelopeInvalid
from ._keys import KEY_BYTES

ALGORITHM: Final = "hpke-x25519-chacha20poly1305:v2"
CONTEXT_LABEL: Final = "alga-ext-secrets-info:v2"

_SUITE: Final = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)
_ENC_BYTES: Final = KEY_BYTES  # DHKEM(X25519)'s Nenc; KEM.enc_length() would need cryptography 49
_TAG_BYTES: Final = 16


def seal(plaintext: bytes, recipient: X25519PublicKey, context: bytes) -> bytes:
    """Return ``enc || ciphertext`` for ``recipient``, bound to ``context`` through HPKE's ``info``."""
    return _SUITE.encrypt(plaintext, recipient, info=context)


def open_sealed(raw: bytes, private: X25519PrivateKey, context: bytes) -> bytes:
    """Open ``enc || ciphertext`` with the runner's key under ``context``.

    Raises:
        EnvelopeInvalid: too short to hold ``enc`` and a tag.
        DecryptFailed: wrong key, other context, or tampered bytes.
    """
    if len(raw) < _ENC_BYTES + _TAG_BYTES:
        raise EnvelopeInvalid("ciphertext is too short")
    try:
        return _SUITE.decrypt(raw, private, info=context)
    except (InvalidTag, ValueError):  # ValueError: a low-order ``enc`` some versions refuse before decrypting
        raise DecryptFailed("secret envelope does not open with this key and context") from None
