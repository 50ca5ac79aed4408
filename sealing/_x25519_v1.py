"""``x25519-chacha20poly1305:v1``: the hand-built ECIES box this package wrote before HPKE; opened, never written.

Construction (kept so envelopes stored before v2 still open):

* ``shared = X25519(eph_priv, recipient_pub)`` with a fresh ephemeral key pair per envelope;
* ``key = HKDF-SHA256(shared, salt = eph_pub || recipient_pub, info = b"alga-ext-secrets:v1", 32 bytes)``;
* ``ChaCha20Poly1305(key)`` with a random 12-byte nonce, the envelope's context as associated data;
* the envelope bytes are ``eph_pub || nonce || ciphertext+tag``.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._errors import DecryptFailed, EnvelopeInvalid
from ._keys import KEY_BYTES, raw_public

ALGORITHM: Final = "x25519-chacha20poly1305:v1"
CONTEXT_LABEL: Final = "alga-ext-secrets-aad:v1"

_HKDF_INFO: Final = b"alga-ext-secrets:v1"
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16


def open_sealed(raw: bytes, private: X25519PrivateKey, context: bytes) -> bytes:
    """Open ``eph_pub || nonce || ciphertext`` with the runner's key, ``context`` as associated data.

    Raises:
        EnvelopeInvalid: too short to hold the ephemeral key, the nonce and a tag.
        DecryptFailed: wrong key, other context, or tampered bytes.
    """
    if len(raw) < KEY_BYTES + _NONCE_BYTES + _TAG_BYTES:
        raise EnvelopeInvalid("ciphertext is too short")
    eph_pub, nonce = raw[:KEY_BYTES], raw[KEY_BYTES : KEY_BYTES + _NONCE_BYTES]
    ciphertext = raw[KEY_BYTES + _NONCE_BYTES :]
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(eph_pub))
    except ValueError as exc:  # an all-zero shared secret (low-order point) is refused by cryptography
        raise DecryptFailed("secret envelope does not open with this key") from exc
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=eph_pub + raw_public(private.public_key()),
                info=_HKDF_INFO)
    try:
        return ChaCha20Poly1305(hkdf.derive(shared)).decrypt(nonce, ciphertext, context)
    except InvalidTag:
        raise DecryptFailed("secret envelope does not open with this key and context") from None
