"""Extension key-value storage (``cap:storage.kv``): the one backend protocol, the limits, shared validation.

Records are keyed by (tenant, owner, namespace, key), where the owner is the install (``install/<id>``).
``revision`` starts at 1 and grows by 1 on every write. A put with ``if_revision`` set is a compare-and-swap:
it succeeds only when the stored revision equals it, and ``if_revision=0`` means "only if absent" (revisions
start at 1, so an absent key is at revision 0); any other revision for a missing key is a conflict. Deleting a
missing key answers ``missing``. Listing is ordered by key; the cursor is the last key of the previous page
(exclusive), which is also what a guest holding only the entries can pass back.

Guest-visible errors (:class:`HostCallError` variants of ``storage-error``):

* ``missing``: get or delete of a key that does not exist;
* ``conflict``: a compare-and-swap whose expected revision does not match;
* ``denied``: a key, namespace or value outside the limits below, a quota reached, no install to own the
  data (HTTP backend), or the platform refusing;
* ``internal``: the store failed (database error, platform unreachable).

Without an install id, the SQLite backend keeps the data under the extension (``extension/<id>``, per tenant),
so that a locally invoked extension still has storage; the HTTP backend refuses (``denied``), as the
platform's storage API is per install.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from ...engine import HostScope
from .._errors import HostCallError

__all__ = [
    "DEFAULT_MAX_KEYS_PER_NAMESPACE",
    "DEFAULT_MAX_KEY_CHARS",
    "DEFAULT_MAX_NAMESPACES",
    "DEFAULT_MAX_NAMESPACE_CHARS",
    "DEFAULT_MAX_TOTAL_BYTES",
    "DEFAULT_MAX_VALUE_BYTES",
    "DEFAULT_PAGE_SIZE",
    "Entry",
    "StorageBackend",
    "StorageLimits",
    "storage_owner",
]

DEFAULT_MAX_KEY_CHARS: Final = 256
DEFAULT_MAX_NAMESPACE_CHARS: Final = 128
DEFAULT_MAX_VALUE_BYTES: Final = 64 * 1024
DEFAULT_MAX_NAMESPACES: Final = 32
DEFAULT_MAX_KEYS_PER_NAMESPACE: Final = 5120
DEFAULT_MAX_TOTAL_BYTES: Final = 64 * 1024 * 1024
"""Bytes of keys (UTF-8) plus values held by one install, across its namespaces."""
DEFAULT_PAGE_SIZE: Final = 100
"""Entries per ``list-entries`` page (also the platform API's maximum)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored record, as ``storage-entry`` returns it (``revision`` is always set here)."""

    namespace: str
    key: str
    value: bytes
    revision: int

    def __repr__(self) -> str:  # values are the extension's data: keep them out of logs
        return f"Entry(namespace={self.namespace!r}, key={self.key!r}, revision={self.revision}, {len(self.value)} B)"


@dataclass(frozen=True, slots=True)
class StorageLimits:
    """Per-install limits, checked by both backends (the SQLite one enforces the quotas too)."""

    max_key_chars: int = DEFAULT_MAX_KEY_CHARS
    max_namespace_chars: int = DEFAULT_MAX_NAMESPACE_CHARS
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
    max_namespaces: int = DEFAULT_MAX_NAMESPACES
    max_keys_per_namespace: int = DEFAULT_MAX_KEYS_PER_NAMESPACE
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    page_size: int = DEFAULT_PAGE_SIZE

    def check_namespace(self, namespace: str) -> None:
        _check_name("namespace", namespace, self.max_namespace_chars)

    def check_key(self, key: str) -> None:
        _check_name("key", key, self.max_key_chars)

    def check_value(self, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError("storage value must be bytes")
        if len(value) > self.max_value_bytes:
            raise HostCallError("denied", f"value is over {self.max_value_bytes} bytes")

    def check_revision(self, revision: int | None) -> None:
        if revision is not None and (not isinstance(revision, int) or revision < 0 or revision >= 2**64):
            raise HostCallError("denied", "revision must be a u64")

    def check_cursor(self, cursor: str | None) -> None:
        if cursor is not None and (not isinstance(cursor, str) or len(cursor) > self.max_key_chars):
            raise HostCallError("denied", "cursor is not a key")

    def page(self, limit: int | None) -> int:
        """The page size to use for a requested ``limit`` (``None``: the default), within 1..page_size."""
        return self.page_size if limit is None else max(1, min(limit, self.page_size))


def _check_name(what: str, value: str, max_chars: int) -> None:
    if not isinstance(value, str):
        raise TypeError(f"storage {what} must be a string")
    if not 1 <= len(value) <= max_chars:
        raise HostCallError("denied", f"{what} must be 1-{max_chars} characters")
    if "/" in value:
        raise HostCallError("denied", f"{what} must not contain '/'")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise HostCallError("denied", f"{what} must not contain control characters")


def storage_owner(scope: HostScope, *, allow_extension_fallback: bool) -> str:
    """The owner part of the record key: ``install/<id>``, or ``extension/<id>`` when allowed and no install."""
    if scope.install_id:
        return f"install/{scope.install_id}"
    if allow_extension_fallback:
        return f"extension/{scope.extension_id}"
    raise HostCallError("denied", "storage needs an install id")


class StorageBackend(Protocol):
    """What a storage backend implements (SQLite, the platform's HTTP API). Every method may raise
    :class:`HostCallError`; the glue reaches it through :class:`WitStorageAdapter`."""

    async def get(self, scope: HostScope, namespace: str, key: str) -> Entry:
        """The entry, or ``missing``."""
        ...

    async def put(
        self, scope: HostScope, namespace: str, key: str, value: bytes, if_revision: int | None = None
    ) -> Entry:
        """Write ``value``; with ``if_revision``, only if the stored revision matches (else ``conflict``)."""
        ...

    async def delete(self, scope: HostScope, namespace: str, key: str) -> None:
        """Remove the entry, or ``missing``."""
        ...

    async def list_entries(
        self, scope: HostScope, namespace: str, cursor: str | None = None, limit: int | None = None
    ) -> tuple[list[Entry], str | None]:
        """One page of entries with keys after ``cursor``, in key order, and the cursor of the next page."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
