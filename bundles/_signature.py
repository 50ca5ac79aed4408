"""Detached bundle signatures over the compressed bundle bytes, and the runner's signature policy.

Two algorithms, chosen by the trusted key's type (nothing in the signature says which, as with cosign):

* ``ed25519``: the raw 64-byte signature, base64.
* ``ecdsa-p256-sha256``: base64 of the DER ECDSA signature over SHA-256 of the blob, i.e. exactly what
  ``cosign sign-blob --key cosign.key`` writes; its ``cosign.pub`` is a PEM ``PUBLIC KEY`` for the trust bundle.

``bundle.sig`` holds the base64 text on a single line.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from cachetools import LRUCache
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ._errors import SignatureError, TrustBundleError
from ._pack import parse_content_hash

__all__ = [
    "ALGORITHMS",
    "DEFAULT_MAX_WARNED_HASHES",
    "DEFAULT_SIGNATURE_ALGORITHM",
    "SignaturePolicy",
    "SignatureStatus",
    "TrustBundle",
    "decode_signature",
    "generate_private_key",
    "key_fingerprint",
    "sign_bundle",
]

Algorithm = Literal["ed25519", "ecdsa-p256-sha256"]
ALGORITHMS: Final[tuple[str, ...]] = ("ed25519", "ecdsa-p256-sha256")
DEFAULT_SIGNATURE_ALGORITHM: Final = "ed25519"
#: How many content hashes the no-trust-bundle warning remembers (so it is logged once per hash).
DEFAULT_MAX_WARNED_HASHES: Final = 10_000
_ALIASES: Final[dict[str, Algorithm]] = {
    "ed25519": "ed25519",
    "ecdsa-p256-sha256": "ecdsa-p256-sha256",
    "ecdsa-p256": "ecdsa-p256-sha256",
    "ecdsa": "ecdsa-p256-sha256",
}
_MAX_SIGNATURE_TEXT: Final = 4096
_PEM_BLOCK_RE: Final = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\s.*?-----END \1-----", re.DOTALL)
_logger = logging.getLogger("bundles.signature")

_PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def _algorithm(name: str) -> Algorithm:
    try:
        return _ALIASES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown signature algorithm {name!r} (use one of {', '.join(ALGORITHMS)})") from None


def generate_private_key(algorithm: str = DEFAULT_SIGNATURE_ALGORITHM) -> tuple[bytes, bytes]:
    """A new signing key: ``(private PKCS#8 PEM, public SubjectPublicKeyInfo PEM)``."""
    private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    if _algorithm(algorithm) == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def sign_bundle(data: bytes, private_key_pem: bytes, *, password: bytes | None = None) -> bytes:
    """Sign the compressed bundle bytes; return the base64 signature text (ASCII, no newline).

    Raises:
        SignatureError: the key is unreadable or of an unsupported type.
    """
    try:
        key = serialization.load_pem_private_key(private_key_pem, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"cannot load the private key: {exc}") from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.sign(data)
    elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        raw = key.sign(data, ec.ECDSA(hashes.SHA256()))
    else:
        raise SignatureError("unsupported private key type (use ed25519 or ECDSA P-256)")
    return base64.b64encode(raw)


def decode_signature(signature: bytes | str) -> bytes:
    """The raw signature from ``bundle.sig`` text (base64, surrounding whitespace ignored).

    Raises:
        SignatureError: empty, too long, or not base64.
    """
    text = signature.encode("ascii", "replace") if isinstance(signature, str) else bytes(signature)
    text = text.strip()
    if not text:
        raise SignatureError("signature is empty")
    if len(text) > _MAX_SIGNATURE_TEXT:
        raise SignatureError(f"signature is longer than {_MAX_SIGNATURE_TEXT} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("signature is not base64 text") from None


def key_fingerprint(key: _PublicKey) -> str:
    """``sha256:<hex>`` of the key's DER SubjectPublicKeyInfo."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


class TrustBundle:
    """The public keys a signature may be made by (``SIGNING_TRUST_BUNDLE``)."""

    def __init__(self, keys: list[_PublicKey]) -> None:
        if not keys:
            raise TrustBundleError("trust bundle holds no public keys")
        self._keys = [(key_fingerprint(k), k) for k in keys]

    @classmethod
    def from_pem(cls, pem: bytes | str) -> TrustBundle:
        """Load every ``PUBLIC KEY`` block (Ed25519 or ECDSA P-256) of a PEM text.

        Raises:
            TrustBundleError: no block, a block of another kind, an unreadable or unsupported key.
        """
        raw = pem.encode() if isinstance(pem, str) else bytes(pem)
        keys: list[_PublicKey] = []
        for index, match in enumerate(_PEM_BLOCK_RE.finditer(raw)):
            label = match.group(1).decode()
            if label != "PUBLIC KEY":
                raise TrustBundleError(f"PEM block {index + 1} is a {label!r}; a trust bundle holds PUBLIC KEY blocks")
            try:
                key = serialization.load_pem_public_key(match.group(0))
            except (ValueError, UnsupportedAlgorithm) as exc:
                raise TrustBundleError(f"PEM block {index + 1}: unreadable public key ({exc})") from None
            if isinstance(key, ed25519.Ed25519PublicKey) or (
                isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
            ):
                keys.append(key)
            else:
                raise TrustBundleError(
                    f"PEM block {index + 1}: unsupported key type {type(key).__name__} (ed25519 or ECDSA P-256)"
                )
        if not keys:
            raise TrustBundleError("no PEM PUBLIC KEY block found in the trust bundle")
        return cls(keys)

    @classmethod
    def from_file(cls, path: str | Path) -> TrustBundle:
        """Load a trust bundle file.

        Raises:
            TrustBundleError: unreadable file or invalid content (the message names the file).
        """
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise TrustBundleError(f"cannot read trust bundle {path}: {exc.strerror or exc}") from None
        try:
            return cls.from_pem(raw)
        except TrustBundleError as exc:
            raise TrustBundleError(f"{path}: {exc.message}") from None

    @property
    def fingerprints(self) -> tuple[str, ...]:
        return tuple(fp for fp, _ in self._keys)

    def verify(self, data: bytes, signature: bytes | str) -> str:
        """Check a detached signature over ``data``; return the fingerprint of the key that made it.

        Raises:
            SignatureError: malformed, or made by none of the trusted keys.
        """
        raw = decode_signature(signature)
        for fingerprint, key in self._keys:
            try:
                if isinstance(key, ed25519.Ed25519PublicKey):
                    if len(raw) != 64:
                        continue
                    key.verify(raw, data)
                else:
                    key.verify(raw, data, ec.ECDSA(hashes.SHA256()))
            except (InvalidSignature, ValueError):
                continue
            return fingerprint
        raise SignatureError(f"signature does not verify with any of the {len(self._keys)} trusted key(s)")


@dataclass(frozen=True)
class SignatureStatus:
    """Outcome of :meth:`SignaturePolicy.check`."""

    state: Literal["verified", "unsigned-dev"]
    key_fingerprint: str | None = None

    @property
    def verified(self) -> bool:
        return self.state == "verified"

    def __str__(self) -> str:
        return self.state


class SignaturePolicy:
    """The runner's rule: with a trust bundle, only bundles signed by a trusted key; without, anything (dev).

    Without a trust bundle a warning is logged (logger ``bundles.signature``) once per content hash.
    Thread-safe: checks run in worker threads.
    """

    def __init__(self, trust: TrustBundle | None, *, max_warned_hashes: int = DEFAULT_MAX_WARNED_HASHES) -> None:
        self.trust = trust
        self._warned: LRUCache[str, bool] = LRUCache(maxsize=max_warned_hashes)
        self._lock = threading.Lock()

    def check(self, data: bytes, signature: bytes | str | None, content_hash: str) -> SignatureStatus:
        """Decide whether the bundle ``data`` (already known to hash to ``content_hash``) may be used.

        Raises:
            SignatureError: a trust bundle is configured and the signature is missing, malformed or untrusted.
        """
        hex_hash = parse_content_hash(content_hash)
        if self.trust is None:
            self._warn_once(hex_hash)
            return SignatureStatus("unsigned-dev")
        if signature is None or not (signature.strip() if isinstance(signature, str) else bytes(signature).strip()):
            raise SignatureError(f"bundle sha256:{hex_hash} has no signature and a trust bundle is configured")
        try:
            fingerprint = self.trust.verify(data, signature)
        except SignatureError as exc:
            raise SignatureError(f"bundle sha256:{hex_hash}: {exc.message}") from None
        return SignatureStatus("verified", fingerprint)

    def _warn_once(self, hex_hash: str) -> None:
        with self._lock:
            if self._warned.get(hex_hash):  # a hit makes it the most recently used
                return
            with contextlib.suppress(ValueError):  # max_warned_hashes=0: warn every time
                self._warned[hex_hash] = True
        _logger.warning(
            "bundle sha256:%s used without signature verification: no trust bundle configured "
            "(SIGNING_TRUST_BUNDLE unset; development mode)",
            hex_hash,
        )
