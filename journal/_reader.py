"""``JournalReader``: fetch and open one entry, or delete it (retention, a tenant's request)."""

from __future__ import annotations

import functools
from typing import Any, Final, final

import trio

from bundles import ObjectNotFound, ObjectTooLarge, StoreError
from bundles.store import BundleStore, validate_key

from ._errors import JournalCorrupt, JournalNotFound, JournalStoreError
from ._ids import DEFAULT_PREFIX, entry_key
from ._keys import JournalKeyring
from ._seal import DEFAULT_MAX_DOCUMENT_BYTES, open_entry

__all__ = ["JournalReader"]

# A sealed blob is its compressed document plus a header and a tag; zstd never expands JSON by more than a
# few bytes per block, so this slack over the document cap is ample.
_BLOB_SLACK: Final = 64 * 1024
_INLINE_OPEN_LIMIT: Final = 64 * 1024


@final
class JournalReader:
    """Reads entries written by ``JournalWriter`` (same store, prefix and a keyring holding the sealing key).

    Args:
        store: the store the writer writes to.
        keyring: any of its keys opens an entry sealed with that key id.
        prefix: the journal's key prefix in the store.
        max_entry_bytes: the largest entry document opened (at least the writer's ``max_entry_bytes``).
    """

    def __init__(
        self,
        store: BundleStore,
        keyring: JournalKeyring,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_entry_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    ) -> None:
        validate_key(prefix)
        if max_entry_bytes < 1:
            raise ValueError("max_entry_bytes must be positive")
        self._store = store
        self._keyring = keyring
        self._prefix = prefix
        self._max_entry_bytes = max_entry_bytes

    def __repr__(self) -> str:
        return f"JournalReader({self._store!r}, prefix={self._prefix!r})"

    def key(self, tenant_id: str, extension_id: str, entry_id: str) -> str:
        """The object key of an entry (``entry_key`` under this reader's prefix).

        Raises:
            ValueError: an id is not in the id grammar.
        """
        return entry_key(tenant_id, extension_id, entry_id, prefix=self._prefix)

    async def read(self, tenant_id: str, extension_id: str, entry_id: str) -> dict[str, Any]:
        """The entry document.

        Raises:
            JournalNotFound: no such entry (also when an id is not even in the id grammar).
            JournalKeyError: the entry was sealed with a key this keyring does not hold.
            JournalCorrupt: the entry does not open (tampered, moved from another key, over the size cap).
            JournalStoreError: the store failed.
        """
        try:
            key = self.key(tenant_id, extension_id, entry_id)
        except ValueError:
            raise JournalNotFound(f"no journal entry {entry_id[:80]!r} (malformed id)") from None
        try:
            blob = await self._store.get_bytes(key, max_bytes=self._max_entry_bytes + _BLOB_SLACK)
        except ObjectNotFound:
            raise JournalNotFound(f"no journal entry {entry_id!r} for {tenant_id}/{extension_id}") from None
        except ObjectTooLarge:
            raise JournalCorrupt(f"journal entry {entry_id!r} is larger than this reader opens") from None
        except StoreError as exc:
            raise JournalStoreError(f"journal store failed reading {entry_id!r}: {exc}") from exc
        opener = functools.partial(open_entry, blob, self._keyring, aad=key, max_document_bytes=self._max_entry_bytes)
        if len(blob) > _INLINE_OPEN_LIMIT:
            return await trio.to_thread.run_sync(opener)
        return opener()

    async def delete(self, tenant_id: str, extension_id: str, entry_id: str) -> None:
        """Delete an entry; a missing entry (or a malformed id, which names none) is not an error.

        Raises:
            JournalStoreError: the store failed.
        """
        try:
            key = self.key(tenant_id, extension_id, entry_id)
        except ValueError:
            return
        try:
            await self._store.delete(key)
        except StoreError as exc:
            raise JournalStoreError(f"journal store failed deleting {entry_id!r}: {exc}") from exc
