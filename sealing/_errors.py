"""Errors raised while sealing or opening a secret envelope.

The tree::

    SealingError                 anything wrong with an envelope or a key
    ├── EnvelopeInvalid          not an envelope: missing/ill-typed fields, bad base64, bad JSON, bad plaintext map
    ├── EnvelopeExpired          ``expires_at`` is in the past
    ├── DecryptFailed            authentication failed: wrong key, tampered bytes, other tenant/extension
    ├── UnsupportedAlgorithm     an ``algorithm`` (or ``version``) this package cannot open
    └── KeyInvalid               a key is not 32 raw bytes in base64

Each error has a stable ``code`` for logs and wire errors. Messages never contain secret values.
"""

from __future__ import annotations


class SealingError(Exception):
    """Base of every sealing error."""

    code: str = "sealing_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EnvelopeInvalid(SealingError):
    """The envelope (or the map inside it) is malformed."""

    code = "envelope_invalid"


class EnvelopeExpired(SealingError):
    """The envelope's ``expires_at`` has passed."""

    code = "envelope_expired"


class DecryptFailed(SealingError):
    """The ciphertext did not authenticate under this key and context."""

    code = "decrypt_failed"


class UnsupportedAlgorithm(SealingError):
    """The envelope names an algorithm or version this package does not open."""

    code = "unsupported_algorithm"


class KeyInvalid(SealingError):
    """A public or private key is not 32 raw bytes encoded in base64."""

    code = "invalid_key"
