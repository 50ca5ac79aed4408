"""The runner's X25519 key pair as base64 text: made, loaded and checked in one place.

Both envelope algorithms use the same key: a v1 key opens v2 envelopes, so moving to HPKE needs no key rotation.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from ._errors import KeyInvalid

KEY_BYTES: Final = 32


def generate_keypair() -> tuple[str, str]:
    """Make a new X25519 key pair for the runner.

    Returns:
        ``(private_b64, public_b64)``: the raw 32-byte keys, base64 encoded.
    """
    private = X25519PrivateKey.generate()
    private_raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return b64(private_raw), b64(raw_public(private.public_key()))


def public_key_from_private(private_key_b64: str) -> str:
    """Return the base64 public key that belongs to ``private_key_b64``.

    Raises:
        KeyInvalid: the private key is not 32 raw bytes in base64.
    """
    return b64(raw_public(load_private(private_key_b64).public_key()))


def load_public(public_key_b64: str) -> X25519PublicKey:
    return X25519PublicKey.from_public_bytes(_key_bytes(public_key_b64, "public"))


def load_private(private_key_b64: str) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(_key_bytes(private_key_b64, "private"))


def raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _key_bytes(value: str, kind: str) -> bytes:
    if not isinstance(value, str):
        raise KeyInvalid(f"{kind} key must be a base64 string")
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyInvalid(f"{kind} key is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyInvalid(f"{kind} key must be {KEY_BYTES} raw bytes, got {len(raw)}")
    return raw
