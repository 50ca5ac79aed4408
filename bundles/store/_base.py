"""The store protocol and the pieces both backends share: argument checks, the capped hashing reader."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from .._errors import IntegrityError, ObjectTooLarge
from .._pack import is_canonical_hex

__all__ = ["DEFAULT_CHUNK_SIZE", "BundleStore", "CappedDigest", "StoreStatistics"]

DEFAULT_CHUNK_SIZE: Final = 1024 * 1024
"""Bytes read per step when streaming an object."""


@runtime_checkable
class BundleStore(Protocol):
    """A write-once object store keyed by relative keys (see ``validate_key``). All methods are trio-async.

    ``put_bytes`` is idempotent for identical bytes and refuses different bytes under an existing key
    (``ObjectExists``), race-free across concurrent writers. ``replace_bytes`` is the one exception, for the
    objects that are not content-addressed (a bundle's detached signature): it writes ``data`` under ``key``
    whether or not the key exists, atomically (a reader sees the old bytes or the new, never a mix).
    ``delete`` removes an object (for the journal's retention and a tenant's deletions, never for bundles);
    deleting a missing key is not an error. ``get_bytes`` streams and stops as soon as the
    object exceeds ``max_bytes`` (``ObjectTooLarge``), verifies ``sha256_hex`` when given
    (``IntegrityError``) and raises ``ObjectNotFound`` for a missing key. Every other failure is a
    ``StoreError``. Invalid keys raise ``ValueError`` before any I/O.
    """

    async def put_bytes(self, key: str, data: bytes) -> None: ...

    async def replace_bytes(self, key: str, data: bytes) -> None: ...

    async def get_bytes(self, key: str, *, max_bytes: int, sha256_hex: str | None = None) -> bytes: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class StoreStatistics:
    """Counters since the store was opened (for metrics and tests).

    Attributes:
        bytes_read: object bytes received by ``get_bytes`` and by write-once comparisons.
        bytes_written: object bytes sent by ``put_bytes`` (zero when the object already existed).
        objects_written: objects this store created.
    """

    bytes_read: int = 0
    bytes_written: int = 0
    objects_written: int = 0


def check_get_args(max_bytes: int, sha256_hex: str | None) -> None:
    """Reject a negative size cap or a malformed expected hash (programming errors, not store errors)."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError(f"max_bytes must be a non-negative int, got {max_bytes!r}")
    if sha256_hex is not None and not is_canonical_hex(sha256_hex):
        raise ValueError(f"sha256_hex must be 64 lowercase hex digits, got {sha256_hex[:80]!r}")


class CappedDigest:
    """Accumulates an object's chunks, refusing to hold more than ``max_bytes`` and hashing as it goes."""

    def __init__(self, key: str, *, max_bytes: int, sha256_hex: str | None) -> None:
        self._key = key
        self._max_bytes = max_bytes
        self._expected = sha256_hex
        self._hash = hashlib.sha256()
        self._chunks: list[bytes] = []
        self._size = 0

    @property
    def size(self) -> int:
        """Bytes accepted so far."""
        return self._size

    def check_declared_size(self, size: int) -> None:
        """Fail early when the size announced before streaming (stat, Content-Length) is over the cap."""
        if size > self._max_bytes:
            raise self.too_large(size)

    def too_large(self, size: int) -> ObjectTooLarge:
        return ObjectTooLarge(
            f"object {self._key!r} is larger than the limit of {self._max_bytes} bytes (at least {size})"
        )

    def feed(self, chunk: bytes) -> None:
        """Accept one chunk.

        Raises:
            ObjectTooLarge: the object now exceeds ``max_bytes``; nothing past the cap is kept.
        """
        if self._size + len(chunk) > self._max_bytes:
            raise self.too_large(self._size + len(chunk))
        self._size += len(chunk)
        self._hash.update(chunk)
        self._chunks.append(chunk)

    def finish(self) -> bytes:
        """Return the object's bytes after checking the expected hash.

        Raises:
            IntegrityError: ``sha256_hex`` was given and the bytes hash to something else.
        """
        actual = self._hash.hexdigest()
        if self._expected is not None and actual != self._expected:
            raise IntegrityError(f"object {self._key!r} hashes to sha256:{actual}, expected sha256:{self._expected}")
        return b"".join(self._chunks)
