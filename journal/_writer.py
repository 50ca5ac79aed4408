"""``JournalWriter``: entries are written off the request path, through a bounded queue that never blocks.

``submit`` is what an invocation pays: it encodes the document (orjson, which also snapshots it) and puts it
on a bounded in-memory queue, or drops it and counts the drop. Compression, encryption and the store write
happen in ``run``'s tasks. A failed write is counted and logged, and the writer goes on: losing a journal
entry must never cost an invocation.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, final

import trio

from bundles.store import BundleStore, validate_key

from ._errors import JournalFull
from ._ids import DEFAULT_PREFIX, entry_key
from ._keys import JournalKeyring
from ._seal import DEFAULT_MAX_DOCUMENT_BYTES, encode_document, seal_document

__all__ = [
    "DEFAULT_MAX_CONCURRENT_WRITES",
    "DEFAULT_MAX_ENTRY_BYTES",
    "DEFAULT_MAX_QUEUE",
    "JournalWriter",
    "WriterStatistics",
]

DEFAULT_MAX_QUEUE: Final = 256
"""Entries waiting to be written; one more is dropped (and counted), never waited for."""
DEFAULT_MAX_ENTRY_BYTES: Final = DEFAULT_MAX_DOCUMENT_BYTES
"""The largest entry document (its JSON) written; a larger one is dropped at ``submit``."""
DEFAULT_MAX_CONCURRENT_WRITES: Final = 4
"""Store writes in flight at once: an S3 PUT waits on the network, so a few overlap."""

# Sealing a small document in the trio thread costs less than the hop to a worker thread.
_INLINE_SEAL_LIMIT: Final = 64 * 1024

logger = logging.getLogger("journal")


@dataclass(frozen=True)
class WriterStatistics:
    """Counters since the writer was created (for metrics and tests).

    Attributes:
        queued: entries accepted by ``submit`` and not yet written or failed.
        written: entries stored.
        dropped: entries refused by ``submit`` (queue full, writer closed, too large, not encodable, bad ids).
        failed: entries whose sealing or store write failed.
    """

    queued: int = 0
    written: int = 0
    dropped: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _Pending:
    key: str
    document: bytes


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


@final
class JournalWriter:
    """Writes sealed entries to a bundle store under ``{prefix}/v1/…`` from a background trio task.

    Use from trio code (``submit`` is not thread-safe): ``await nursery.start(writer.run)``, then ``submit``
    from request handlers; ``await writer.aclose()`` stops taking entries, writes what is queued and ends ``run``.

    Args:
        store: where entries go (the bundle store's backend or a store of its own).
        keyring: its primary key seals every entry.
        prefix: the key prefix of the journal in the store.
        max_queue: entries waiting to be written before ``submit`` drops.
        max_entry_bytes: the largest entry document (JSON bytes) accepted.
        max_concurrent_writes: store writes in flight at once.

    Raises:
        ValueError: the prefix is not a safe key, or a limit is not positive.
    """

    def __init__(
        self,
        store: BundleStore,
        keyring: JournalKeyring,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
        max_concurrent_writes: int = DEFAULT_MAX_CONCURRENT_WRITES,
    ) -> None:
        validate_key(prefix)
        if max_queue < 1 or max_entry_bytes < 1 or max_concurrent_writes < 1:
            raise ValueError("max_queue, max_entry_bytes and max_concurrent_writes must be positive")
        self._store = store
        self._keyring = keyring
        self._prefix = prefix
        self._max_entry_bytes = max_entry_bytes
        self._concurrency = max_concurrent_writes
        self._send, self._receive = trio.open_memory_channel[_Pending](max_queue)
        self._accepted = 0
        self._written = 0
        self._dropped = 0
        self._failed = 0
        self._idle = trio.Event()
        self._idle.set()
        self._started = False
        self._stopped = trio.Event()
        self._closed = False

    def __repr__(self) -> str:
        return f"JournalWriter({self._store!r}, prefix={self._prefix!r})"

    def statistics(self) -> WriterStatistics:
        """Counters since the writer was created."""
        return WriterStatistics(queued=self._pending, written=self._written, dropped=self._dropped, failed=self._failed)

    @property
    def _pending(self) -> int:
        return self._accepted - self._written - self._failed

    def submit(self, tenant_id: str, extension_id: str, entry_id: str, doc: Mapping[str, Any]) -> bool:
        """Queue an entry document for writing; never blocks, never raises.

        Returns:
            ``True`` when queued; ``False`` when dropped (counted in ``statistics().dropped`` and logged at
            1, 2, 4, 8, … drops): the queue is full, the writer is closed, the document is over
            ``max_entry_bytes`` or not JSON-encodable, or an id cannot name an object.
        """
        try:
            self._enqueue(tenant_id, extension_id, entry_id, doc)
        except Exception as exc:
            self._dropped += 1
            if _is_power_of_two(self._dropped):
                reason = exc.message if isinstance(exc, JournalFull) else f"{type(exc).__name__}: {exc}"
                logger.warning("journal entry dropped (%d so far): %s", self._dropped, reason[:300])
            return False
        return True

    def _enqueue(self, tenant_id: str, extension_id: str, entry_id: str, doc: Mapping[str, Any]) -> None:
        if self._closed:
            raise JournalFull("the journal writer is closed")
        key = entry_key(tenant_id, extension_id, entry_id, prefix=self._prefix)
        document = encode_document(doc)
        if len(document) > self._max_entry_bytes:
            raise JournalFull(f"entry {entry_id[:40]} is {len(document)} bytes, over the {self._max_entry_bytes} cap")
        try:
            self._send.send_nowait(_Pending(key, document))
        except trio.WouldBlock:
            raise JournalFull("the journal queue is full") from None
        except trio.ClosedResourceError:
            raise JournalFull("the journal writer is closed") from None
        if self._pending == 0:
            self._idle = trio.Event()
        self._accepted += 1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write queued entries until ``aclose`` (then the queue is drained) or cancellation (the rest is lost).

        Raises:
            RuntimeError: ``run`` was already started once.
        """
        if self._started:
            raise RuntimeError("JournalWriter.run can run only once")
        self._started = True
        try:
            async with trio.open_nursery() as nursery:
                for _ in range(self._concurrency):
                    nursery.start_soon(self._write_loop)
                task_status.started()
        finally:
            self._stopped.set()

    async def _write_loop(self) -> None:
        async for item in self._receive:
            await self._write(item)

    async def _write(self, item: _Pending) -> None:
        try:
            seal = functools.partial(seal_document, item.document, self._keyring, aad=item.key)
            if len(item.document) > _INLINE_SEAL_LIMIT:
                blob = await trio.to_thread.run_sync(seal)
            else:
                blob = seal()
            await self._store.put_bytes(item.key, blob)
        except Exception as exc:
            self._failed += 1
            if _is_power_of_two(self._failed):
                logger.warning(
                    "journal entry %s not written (%d failures so far): %s: %s",
                    item.key,
                    self._failed,
                    type(exc).__name__,
                    str(exc)[:300],
                )
        else:
            self._written += 1
        finally:
            if self._pending == 0:
                self._idle.set()

    async def flush(self) -> None:
        """Wait until every entry accepted so far is written or failed (needs ``run`` running)."""
        while self._pending > 0:
            await self._idle.wait()

    async def aclose(self) -> None:
        """Stop taking entries; when ``run`` is running, wait for it to write what is queued and end.

        Bound the wait with a cancel scope if the store may hang; cancelled, the unwritten rest is lost.
        """
        self._closed = True
        self._send.close()
        if self._started:
            await self._stopped.wait()
