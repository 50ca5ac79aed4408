"""Precompiled artifacts shared through a remote object store, authenticated with HMAC-SHA256.

A precompiled artifact is native code: deserializing bytes someone else produced runs their code. Artifacts in
the shared store are therefore sealed by the runner that built them with a key only runners hold
(``RUNNER_PRECOMPILE_KEY``), and a runner deserializes a shared artifact only after the tag verifies over the
content hash and target it asked for (so an artifact cannot be replayed under another hash or engine config).

Sealed layout::

    magic "EXTCWASM" | version u8 | target length u16 | target (ASCII) | content hash (32 bytes)
    | tag (32 bytes, HMAC-SHA256) | payload

The tag covers a domain-separation label, the target, the content hash and the payload.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol, final

import trio

from ._errors import ArtifactRejected
from ._keys import validate_hex, validate_target

log = logging.getLogger(__name__)

MAGIC: Final = b"EXTCWASM"
VERSION: Final = 1
MIN_KEY_BYTES: Final = 32
DEFAULT_MAX_ARTIFACT_BYTES: Final = 512 * 1024**2
"""Largest shared artifact read back (a compiled JS/Python guest is ~35 MB)."""
DEFAULT_SHARED_TIMEOUT: Final = 60.0
"""Seconds one shared-store read or write may take before it counts as failed."""

_LABEL: Final = b"ext-runtime/precompiled-artifact/v1\0"
_HEAD: Final = struct.Struct(">8sBH")
_TAG_BYTES: Final = 32


class RemoteStore(Protocol):
    """The part of the bundle store API the shared artifacts use (duck-typed; ``bundles`` is not imported)."""

    def put_bytes(self, key: str, data: bytes, /) -> Awaitable[Any]: ...

    def get_bytes(self, key: str, /, *, max_bytes: int) -> Awaitable[bytes]: ...


def precompile_key(value: str | bytes) -> bytes:
    """Turn the ``RUNNER_PRECOMPILE_KEY`` setting into key bytes (used as is; at least 32 bytes).

    Raises:
        ValueError: the key is too short to authenticate native code.
    """
    key = value.encode() if isinstance(value, str) else bytes(value)
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"RUNNER_PRECOMPILE_KEY must be at least {MIN_KEY_BYTES} bytes (e.g. openssl rand -hex 32)")
    return key


def default_remote_key(hex_digest: str, target: str) -> str:
    """``sha256/<hex>/precompiled/<target>.cwasm``, beside the bundle in the store layout."""
    return f"sha256/{validate_hex(hex_digest)}/precompiled/{validate_target(target)}.cwasm"


def _tag(key: bytes, hex_digest: str, target: str, payload: bytes | memoryview) -> bytes:
    mac = hmac.new(key, _LABEL, hashlib.sha256)
    encoded = target.encode("ascii")
    mac.update(struct.pack(">H", len(encoded)) + encoded + bytes.fromhex(hex_digest))
    mac.update(struct.pack(">Q", len(payload)))
    mac.update(payload)
    return mac.digest()


def seal_artifact(key: bytes, hex_digest: str, target: str, payload: bytes | bytearray) -> bytes:
    """Header + HMAC tag + payload, ready for the shared store."""
    validate_hex(hex_digest)
    encoded = validate_target(target).encode("ascii")
    view = memoryview(payload)
    head = _HEAD.pack(MAGIC, VERSION, len(encoded)) + encoded + bytes.fromhex(hex_digest)
    return head + _tag(key, hex_digest, target, view) + bytes(view)


def open_artifact(key: bytes, hex_digest: str, target: str, sealed: bytes) -> memoryview:
    """Return the payload of a sealed artifact made for exactly ``(hex_digest, target)`` under ``key``.

    Raises:
        ArtifactRejected: malformed, made for another hash or target, or the tag does not verify.
    """
    validate_hex(hex_digest)
    validate_target(target)
    view = memoryview(sealed)
    if len(view) < _HEAD.size:
        raise ArtifactRejected("shared artifact is truncated")
    magic, version, target_len = _HEAD.unpack_from(view)
    if magic != MAGIC or version != VERSION:
        raise ArtifactRejected("shared artifact has an unknown header")
    pos = _HEAD.size
    body = pos + target_len + 32 + _TAG_BYTES
    if len(view) < body:
        raise ArtifactRejected("shared artifact is truncated")
    if bytes(view[pos : pos + target_len]) != target.encode("ascii"):
        raise ArtifactRejected("shared artifact was built for another target")
    if bytes(view[pos + target_len : pos + target_len + 32]) != bytes.fromhex(hex_digest):
        raise ArtifactRejected("shared artifact was built for another content hash")
    tag = bytes(view[body - _TAG_BYTES : body])
    payload = view[body:]
    if not hmac.compare_digest(tag, _tag(key, hex_digest, target, payload)):
        raise ArtifactRejected("shared artifact tag does not verify")
    return payload


@final
class SharedArtifacts:
    """Reads and writes sealed artifacts in a remote store; every failure degrades to "build locally".

    Args:
        remote: an object with ``await put_bytes(key, data)`` and ``await get_bytes(key, max_bytes=…)``.
        key: the HMAC key (see `precompile_key`).
        not_found: the exception class ``get_bytes`` raises for a missing object (``bundles.ObjectNotFound``).
        already_exists: the exception a write-once store raises when another runner wrote the key first.
        remote_key: where an artifact lives in the store, from ``(hex, target)``.
        max_bytes: largest artifact read back.
        timeout: seconds one read or write may take.
    """

    def __init__(
        self,
        remote: RemoteStore,
        *,
        key: bytes,
        not_found: type[BaseException],
        already_exists: type[BaseException] | None = None,
        remote_key: Callable[[str, str], str] = default_remote_key,
        max_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
        timeout: float = DEFAULT_SHARED_TIMEOUT,
    ) -> None:
        self._remote = remote
        self._key = precompile_key(key)
        self._not_found = not_found
        self._already_exists = already_exists
        self._remote_key = remote_key
        self._max_bytes = max_bytes
        self._timeout = timeout
        self.rejected = 0
        self.errors = 0

    async def fetch(self, hex_digest: str, target: str) -> memoryview | None:
        """The verified payload, or None when missing, rejected (counted) or unreachable (counted)."""
        name = self._remote_key(hex_digest, target)
        try:
            with trio.fail_after(self._timeout):
                sealed = await self._remote.get_bytes(name, max_bytes=self._max_bytes)
        except Exception as exc:
            if isinstance(exc, self._not_found):
                return None
            self.errors += 1
            log.warning("shared artifact %s: read failed: %r", name, exc)
            return None
        try:
            return await trio.to_thread.run_sync(open_artifact, self._key, hex_digest, target, sealed)
        except ArtifactRejected as exc:
            self.rejected += 1
            log.warning("shared artifact %s rejected: %s", name, exc)
            return None

    async def publish(self, hex_digest: str, target: str, payload: bytes | bytearray) -> bool:
        """Seal and write an artifact; return whether the store now holds one (failures are counted)."""
        name = self._remote_key(hex_digest, target)
        sealed = await trio.to_thread.run_sync(seal_artifact, self._key, hex_digest, target, payload)
        try:
            with trio.fail_after(self._timeout):
                await self._remote.put_bytes(name, sealed)
        except Exception as exc:
            if self._already_exists is not None and isinstance(exc, self._already_exists):
                return True
            self.errors += 1
            log.warning("shared artifact %s: write failed: %r", name, exc)
            return False
        return True
