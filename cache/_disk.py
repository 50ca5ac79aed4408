"""Content-addressed, size-bounded LRU cache on disk with single-flight fills.

`DiskCache` opens and closes the cache and hands out pinned entries, filling missing ones once; what happens
to a published entry afterwards (pins, LRU order, bytes, eviction, removal) is `EntryTable`'s (``_table.py``),
and what a holder does with a pinned entry is `CacheEntry`'s (``_entry.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Final, Self, final

import trio

from ._entry import CacheEntry, Fill, pinned_entry, release_entry
from ._errors import CacheCorrupted, InvalidFill, InvalidKey
from ._flight import SingleFlight
from ._fs import (
    TMP_DIR,
    IndexData,
    ScratchArea,
    clean_dead_scratch,
    load_entries,
    load_published,
    publish_entry,
    rmtree_quiet,
    scan_tree,
)
from ._keys import validate_hex, validate_target
from ._locks import LOCKS_DIR, process_lock
from ._stats import CacheStats
from ._table import EntryState, EntryTable

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES: Final = 4 * 1024**3
"""Default bound of the disk cache (``EXT_CACHE_MAX_BYTES``): 4 GiB."""
DEFAULT_ACCESS_PERSIST_INTERVAL: Final = 60.0
"""A hit rewrites index.json's ``last_access`` at most this often (seconds) per entry."""
DEFAULT_MIN_FREE_BYTES: Final = 64 * 1024**2
"""Free space a full filesystem gets back (``EXT_CACHE_MIN_FREE_BYTES``): 64 MiB, a large bundle and its
precompiled artifact."""


@final
class DiskCache:
    """Content-addressed entries under ``root``, bounded by ``max_bytes``, least recently used evicted first.

    Layout: ``<root>/<hex>/index.json`` lists every file with its size and sha256; entries appear by atomic
    rename of a finished scratch directory, so a crash leaves the old state or the new one. Opening the cache
    (``await cache.open()``, or lazily on first use) removes leftovers of dead processes and entries without a
    valid index. Several processes may share a root (a runner's worker processes): each owns a locked scratch
    area under ``<root>/.tmp/``; a missing hash is filled once among all of them and index.json rewrites keep
    each other's changes (file locks under ``<root>/.locks/``, ``_locks.py``); pins and byte accounting are per
    process, so one process may evict an entry another still reads (it then refills it: see docs/runner.md).

    A write that finds the filesystem full (ENOSPC, EDQUOT: the disk is smaller than ``max_bytes`` or shared)
    evicts unpinned entries, least recently used first, until ``min_free_bytes`` (plus what the write needs)
    is free, and runs once more; if it fails again, or nothing could be evicted, it raises `CacheFull` and
    leaves nothing behind.

    Args:
        root: the cache directory (``EXT_CACHE_ROOT``); created if missing.
        max_bytes: bound on the bytes of all entries (``EXT_CACHE_MAX_BYTES``). An entry larger than this
            alone still goes in and is evicted as soon as it is unpinned.
        access_persist_interval: last access is kept in memory and written to index.json at most this often.
        min_free_bytes: free space eviction restores when a write finds the filesystem full
            (``EXT_CACHE_MIN_FREE_BYTES``; the runner's readiness uses the same figure).
    """

    def __init__(
        self,
        root: Path | str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        access_persist_interval: float = DEFAULT_ACCESS_PERSIST_INTERVAL,
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
    ) -> None:
        if max_bytes < 0 or min_free_bytes < 0:
            raise ValueError("max_bytes and min_free_bytes must be >= 0")
        self._root = Path(root)
        self._table = EntryTable(
            self._root,
            max_bytes=max_bytes,
            persist_interval=access_persist_interval,
            min_free_bytes=min_free_bytes,
        )
        table = self._table
        self._fills: SingleFlight[str, EntryState] = SingleFlight(share=table.pin, unshare=table.unpin)
        self._open_lock = trio.Lock()
        self._hits = self._misses = self._fill_count = 0

    @property
    def root(self) -> Path:
        return self._root

    @property
    def max_bytes(self) -> int:
        return self._table.max_bytes

    @property
    def min_free_bytes(self) -> int:
        return self._table.min_free_bytes

    async def free_bytes(self) -> int:
        """Free bytes of the filesystem holding the cache (what an unprivileged writer may use); -1 if unknown."""
        return await self._table.free_bytes()

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def open(self) -> Self:
        """Create the root, remove leftovers of crashed processes and load every valid entry. Idempotent."""
        async with self._open_lock:
            self._table.check_open()
            if not self._table.started:
                scratch, entries = await trio.to_thread.run_sync(self._open_sync)
                self._table.start(scratch, entries)
                await self._table.evict()
        return self

    def _open_sync(self) -> tuple[ScratchArea, list[IndexData]]:
        self._root.mkdir(parents=True, exist_ok=True)
        (self._root / LOCKS_DIR).mkdir(exist_ok=True)
        scratch = ScratchArea(self._root / TMP_DIR)
        removed, alone = clean_dead_scratch(self._root / TMP_DIR, scratch.token)
        if removed:
            log.info("cache %s: removed %d scratch areas left by dead processes", self._root, removed)
        return scratch, load_entries(self._root, scratch, remove_unlisted=alone)

    async def aclose(self) -> None:
        """Write pending last-access times, remove this process's scratch area and release its lock."""
        async with self._open_lock:
            if self._table.closed:
                return
            with trio.CancelScope(shield=True):
                await self._table.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _ensure_open(self) -> None:
        self._table.check_open()
        if not self._table.started:
            await self.open()

    # -- public API --------------------------------------------------------------------------------------

    def entry(self, hex_digest: str, fill: Fill) -> AbstractAsyncContextManager[CacheEntry]:
        """Pin the entry for ``hex_digest``, filling it on a miss: ``async with cache.entry(h, fill) as e``.

        ``fill`` is awaited with a fresh empty directory and writes the entry's files there; the cache then
        hashes them, writes index.json and publishes the directory by one rename. Concurrent calls for a
        missing hash run one fill; its error reaches every waiter and a later call tries again.

        Raises:
            InvalidKey: ``hex_digest`` is not 64 lower-case hex digits.
            InvalidFill: the fill left a symlink, a special file or a reserved name (``index.json``).
        """
        validate_hex(hex_digest)
        return self._entry_cm(hex_digest, fill)

    @asynccontextmanager
    async def _entry_cm(self, hex_digest: str, fill: Fill) -> AsyncIterator[CacheEntry]:
        state = await self._acquire(hex_digest, fill)
        async with pinned_entry(self._table, state) as handle:
            yield handle

    def pin_held(self, hex_digest: str) -> CacheEntry | None:
        """Pin the entry when this process already holds it, without awaiting anything (an invocation's warm path);
        None when it would have to be looked up, waited for or filled (use :meth:`entry` then).

        The pin lasts until :meth:`unpin` (the caller's ``finally``), as :meth:`entry`'s block would.
        """
        table = self._table
        if table.closed or not table.started or table.removing(hex_digest):
            return None
        state = table.get(hex_digest)
        if state is None:
            return None
        self._hits += 1
        table.pin(state)
        table.touch(state)
        return CacheEntry(table, state)

    async def unpin(self, entry: CacheEntry) -> None:
        """Give back the pin of :meth:`pin_held` (the handle is unusable afterwards)."""
        await release_entry(self._table, entry)

    def lookup(self, hex_digest: str) -> AbstractAsyncContextManager[CacheEntry | None]:
        """Pin the entry if it is cached (by this process or another sharing the root), without filling: yields
        None otherwise."""
        validate_hex(hex_digest)
        return self._lookup_cm(hex_digest)

    @asynccontextmanager
    async def _lookup_cm(self, hex_digest: str) -> AsyncIterator[CacheEntry | None]:
        await self._ensure_open()
        table = self._table
        await table.wait_removal(hex_digest)
        state = table.get(hex_digest)
        if state is None and not self._fills.in_flight(hex_digest):
            # Another process sharing the root may have published it.
            index = await trio.to_thread.run_sync(load_published, self._root / hex_digest, hex_digest)
            state = table.get(hex_digest)
            if state is None and index is not None and not self._fills.in_flight(hex_digest):
                state = table.insert(index)
        if state is None:
            yield None
            return
        table.pin(state)
        table.touch(state)
        async with pinned_entry(table, state) as handle:
            yield handle

    async def read_verified(self, hex_digest: str, relpath: str, fill: Fill) -> bytes:
        """Read one verified file of an entry; a corrupted entry is refilled once before giving up."""
        for attempt in range(2):
            async with self.entry(hex_digest, fill) as entry:
                try:
                    return await entry.open_verified(relpath)
                except CacheCorrupted:
                    if attempt:
                        raise
                    log.warning("cache entry %s was corrupted: refilling", hex_digest)
        raise AssertionError("unreachable")

    def contains(self, hex_digest: str) -> bool:
        return validate_hex(hex_digest) in self._table

    async def discard(self, hex_digest: str) -> bool:
        """Drop an entry now (its files go when the last pin is released); return whether it was cached."""
        state = self._table.get(validate_hex(hex_digest))
        if state is None:
            return False
        await self._table.drop(state, corrupted=False)
        return True

    @asynccontextmanager
    async def process_lock(self, hex_digest: str, purpose: str) -> AsyncIterator[None]:
        """Hold a lock on ``purpose`` (``[A-Za-z0-9._-]+``) of one hash against every process sharing the root
        (e.g. one compile per hash and engine target on the machine); see ``_locks.py``."""
        validate_hex(hex_digest)
        validate_target(purpose)
        await self._ensure_open()
        async with process_lock(self._table.lock_path(hex_digest, purpose)):
            yield

    @asynccontextmanager
    async def temp_dir(self) -> AsyncIterator[Path]:
        """A fresh scratch directory on the cache's filesystem, removed on exit."""
        await self._ensure_open()
        path = self._table.scratch_path("tmp")
        await trio.to_thread.run_sync(path.mkdir)
        try:
            yield path
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(rmtree_quiet, path)

    def statistics(self) -> CacheStats:
        table = self._table
        return CacheStats(
            hits=self._hits,
            misses=self._misses,
            fills=self._fill_count,
            evictions=table.evictions,
            corrupted=table.corrupted,
            disk_full=table.disk_full,
            bytes=table.bytes,
            entries=len(table),
            pinned=table.pinned(),
        )

    # -- acquisition and fills ---------------------------------------------------------------------------

    async def _acquire(self, hex_digest: str, fill: Fill) -> EntryState:
        await self._ensure_open()
        table = self._table
        await table.wait_removal(hex_digest)
        state = table.get(hex_digest)
        if state is not None:
            self._hits += 1
            table.pin(state)
            table.touch(state)
            return state
        self._misses += 1
        state, _ = await self._fills.run(hex_digest, lambda: self._load_or_fill(hex_digest, fill))
        try:
            await table.evict()
        except BaseException:
            with trio.CancelScope(shield=True):
                await table.release(state)
            raise
        return state

    async def _load_or_fill(self, hex_digest: str, fill: Fill) -> EntryState:
        table = self._table
        await table.wait_removal(hex_digest)
        state = table.get(hex_digest)
        if state is None:
            path = self._root / hex_digest
            # Another process sharing the root may have published it, or be filling it now: one fill per
            # hash among all of them (the fill lock), and whoever waited finds the entry published.
            index = await trio.to_thread.run_sync(load_published, path, hex_digest)
            if index is None:
                async with process_lock(table.lock_path(hex_digest, "fill")):
                    index = await trio.to_thread.run_sync(load_published, path, hex_digest)
                    if index is None:
                        self._fill_count += 1
                        index = await self._fill(hex_digest, fill)
            state = table.insert(index)
        table.pin(state)
        table.touch(state)
        return state

    async def _fill(self, hex_digest: str, fill: Fill) -> IndexData:
        async def attempt() -> IndexData:
            tmp = self._table.scratch_path("fill")
            try:
                await trio.to_thread.run_sync(tmp.mkdir)
                await fill(tmp)
                return await trio.to_thread.run_sync(self._publish_sync, hex_digest, tmp)
            except BaseException:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(rmtree_quiet, tmp)
                raise

        # A full disk runs the fill a second time: fills should keep what they fetched (see BundleService).
        return await self._table.retry_when_full(f"entry {hex_digest}", attempt)

    def _publish_sync(self, hex_digest: str, tmp: Path) -> IndexData:
        try:
            files, dropped = scan_tree(tmp)
        except (ValueError, InvalidKey) as exc:
            raise InvalidFill(f"fill for {hex_digest}: {exc}") from exc
        if dropped:
            log.warning("cache entry %s: ignored %s shipped by the fill", hex_digest, ", ".join(dropped))
        now = time.time()
        index = IndexData(hex_digest, files, set(), now, now)
        return publish_entry(self._root, index, tmp, self._table.scratch_path("trash"))
