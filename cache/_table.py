"""This process's book of a disk cache's published entries, and every change to them after they are published.

`EntryTable` knows which entries are published under the root, in least-recently-used order, with their pins
and the bytes they add up to. It evicts (unpinned entries only, least recently used first), unpublishes an
entry at once when it is discarded or found corrupted (its files go when the last pin is released), and
rewrites index.json, and makes room when a write finds the filesystem full (`EntryTable.retry_when_full`).
`DiskCache` (``_disk.py``) fills entries and hands them out; `CacheEntry` (``_entry.py``)
reads and changes one pinned entry; both go through the table's methods, never through each other.

The LRU stays an ``OrderedDict`` rather than a ``cachetools`` map: eviction skips pinned entries, and
removing an entry is disk work (a rename, then a deletion once unpinned), not a dictionary operation.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar, final

import trio

from ._errors import CacheClosed, CacheFull
from ._flight import SingleFlight
from ._fs import (
    IndexData,
    ScratchArea,
    disk_full_error,
    free_bytes,
    fsync_dir,
    load_published,
    rmtree_quiet,
    write_durable,
)
from ._keys import INDEX_NAME
from ._locks import LOCKS_DIR, process_lock

log = logging.getLogger(__name__)

T = TypeVar("T")


@final
class EntryState:
    """What the process knows about one entry; shared by every `CacheEntry` handle on it."""

    __slots__ = ("doomed", "hex", "index", "lock", "path", "persisted_access", "pins", "subtrees", "verified")

    def __init__(self, hex_digest: str, path: Path, index: IndexData) -> None:
        self.hex = hex_digest
        self.path = path
        self.index = index
        self.pins = 0
        # Set once the entry is unpublished (corruption, discard): its directory now lives in the scratch
        # area and is deleted when the last pin goes.
        self.doomed = False
        self.persisted_access = index.last_access
        # relpath -> stat key recorded when this process last hashed the file and found it intact.
        self.verified: dict[str, tuple[int, int, int, int]] = {}
        self.lock = trio.Lock()  # serializes rewrites of index.json from this process
        self.subtrees: SingleFlight[str, Path] = SingleFlight()


@final
class EntryTable:
    """The published entries of one open cache in this process (see the module docstring).

    Args:
        root: the cache directory.
        max_bytes: bound on the bytes of all entries; eviction brings the total back under it.
        persist_interval: a release rewrites index.json's ``last_access`` at most this often per entry.
        min_free_bytes: when a write finds the filesystem full, eviction goes on until this much (plus what
            the write needs) is free again.
    """

    def __init__(self, root: Path, *, max_bytes: int, persist_interval: float, min_free_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self._persist_interval = persist_interval
        self._entries: OrderedDict[str, EntryState] = OrderedDict()  # least recently used first
        self._removing: dict[str, trio.Event] = {}
        self._pending_trash: list[Path] = []
        self._scratch: ScratchArea | None = None
        self._closed = False
        self._bytes = 0
        self._evictions = self._corrupted = self._disk_full = 0

    # -- lifecycle ---------------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._scratch is not None

    def start(self, scratch: ScratchArea, entries: list[IndexData]) -> None:
        """Take the scratch area of this process and the entries found on disk (oldest access first)."""
        self._scratch = scratch
        for index in sorted(entries, key=lambda i: i.last_access):
            self.insert(index)

    async def close(self) -> None:
        """Write pending last-access times, remove this process's scratch area and release its lock."""
        if self._scratch is not None:
            for state in list(self._entries.values()):
                if state.index.last_access > state.persisted_access:
                    async with state.lock:
                        await self.write_index(state, best_effort=True)
            await trio.to_thread.run_sync(self._scratch.close)
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def check_open(self) -> None:
        if self._closed:
            raise CacheClosed(f"cache {self.root} is closed")

    def lock_path(self, hex_digest: str, purpose: str) -> Path:
        """The file of the lock other processes sharing the root take for ``purpose`` on this entry."""
        return self.root / LOCKS_DIR / f"{hex_digest}.{purpose}.lock"

    @asynccontextmanager
    async def mutating(self, state: EntryState) -> AsyncIterator[None]:
        """Hold the entry against every other writer, in this process (``state.lock``) and in the others
        sharing the root (the entry's ``index`` lock), with the book refreshed from index.json first: a
        rewrite then keeps what another process added (a precompiled artifact, the UI subtree)."""
        async with state.lock, process_lock(self.lock_path(state.hex, "index")):
            await self.refresh(state)
            yield

    async def refresh(self, state: EntryState) -> None:
        """Adopt what index.json on disk lists now (another process may have changed it). The caller holds
        :meth:`mutating`. An entry whose index is gone or broken keeps this process's view."""
        if state.doomed:
            return
        found = await trio.to_thread.run_sync(load_published, state.path, state.hex)
        if found is None or (found.files == state.index.files and found.subtrees == state.index.subtrees):
            return
        before = state.index.total_bytes
        for relpath, info in found.files.items():
            if state.index.files.get(relpath) != info:
                state.verified.pop(relpath, None)
        for relpath in set(state.index.files) - set(found.files):
            state.verified.pop(relpath, None)
        state.index.files = dict(found.files)
        state.index.subtrees = set(found.subtrees)
        self.account(state, state.index.total_bytes - before)

    def scratch_path(self, kind: str) -> Path:
        """A fresh path in this process's scratch area (nothing is created there yet)."""
        self.check_open()
        assert self._scratch is not None, "cache used before open()"
        return self._scratch.new_path(kind)

    # -- the book ----------------------------------------------------------------------------------------

    def get(self, hex_digest: str) -> EntryState | None:
        return self._entries.get(hex_digest)

    def __contains__(self, hex_digest: object) -> bool:
        return hex_digest in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def evictions(self) -> int:
        return self._evictions

    @property
    def corrupted(self) -> int:
        return self._corrupted

    @property
    def disk_full(self) -> int:
        return self._disk_full

    def pinned(self) -> int:
        return sum(1 for state in self._entries.values() if state.pins)

    def insert(self, index: IndexData) -> EntryState:
        state = EntryState(index.hex, self.root / index.hex, index)
        self._entries[index.hex] = state
        self._bytes += index.total_bytes
        return state

    def account(self, state: EntryState, delta: int) -> None:
        """Count ``delta`` more bytes for ``state`` (a file added or removed), if it is still published."""
        if self._entries.get(state.hex) is state:
            self._bytes += delta

    @staticmethod
    def pin(state: EntryState) -> None:
        state.pins += 1

    def unpin(self, state: EntryState) -> None:
        state.pins -= 1
        if state.doomed and state.pins == 0:
            self._pending_trash.append(state.path)

    def touch(self, state: EntryState) -> None:
        if self._entries.get(state.hex) is state:
            self._entries.move_to_end(state.hex)
        state.index.last_access = time.time()

    async def release(self, state: EntryState) -> None:
        """Give back a pin; then persist the access time if it is due and evict what no longer fits."""
        self.unpin(state)
        persist = (
            not state.doomed
            and state.index.last_access - state.persisted_access >= self._persist_interval
            and not self._closed
        )
        if not persist and self._bytes <= self.max_bytes and not self._pending_trash:
            return  # the common case (a warm entry, a cache within bounds): nothing to await, no shielded scope
        # Runs on every exit path, cancelled or not: finish the bookkeeping it starts.
        with trio.CancelScope(shield=True):
            if persist:
                async with self.mutating(state):
                    await self.write_index(state, best_effort=True)
            await self.evict()

    async def write_index(self, state: EntryState, *, best_effort: bool = False) -> None:
        """Rewrite index.json from memory (scratch file, fsync, rename over the old one).

        The caller holds :meth:`mutating`, so two rewrites never race (in this process or another sharing the
        root) and an older snapshot never wins.
        """
        state.persisted_access = state.index.last_access
        data = state.index.to_json()
        scratch = self.scratch_path("index")
        dest = state.path / INDEX_NAME

        def write() -> None:
            try:
                write_durable(scratch, data)
                os.replace(scratch, dest)
            except BaseException:
                rmtree_quiet(scratch)
                raise
            fsync_dir(dest.parent)

        try:
            await trio.to_thread.run_sync(write)
        except OSError as exc:
            if not best_effort:
                raise
            log.debug("cache entry %s: could not persist index.json: %s", state.hex, exc)

    # -- removal -----------------------------------------------------------------------------------------

    def removing(self, hex_digest: str) -> bool:
        """Whether the entry's directory is being moved out now (see :meth:`wait_removal`)."""
        return hex_digest in self._removing

    async def wait_removal(self, hex_digest: str) -> None:
        """Wait while the entry's directory is being moved out (an acquisition must not see it half-gone)."""
        while (event := self._removing.get(hex_digest)) is not None:
            await event.wait()

    async def drop(self, state: EntryState, *, corrupted: bool) -> None:
        """Unpublish an entry at once (so a refill can take its place); delete its files once unpinned."""
        if state.doomed:
            return
        state.doomed = True
        if self._entries.get(state.hex) is state:
            del self._entries[state.hex]
            self._bytes -= state.index.total_bytes
        if corrupted:
            self._corrupted += 1
        trash = self.scratch_path("trash")
        await self._unpublish([(state, trash)])
        if state.pins == 0:
            self._pending_trash.append(trash)
        with trio.CancelScope(shield=True):
            await self._empty_trash()

    async def evict(self) -> None:
        """Remove least recently used unpinned entries until the cache is within ``max_bytes``."""
        victims: list[tuple[EntryState, Path]] = []
        if self._bytes > self.max_bytes:
            for state in list(self._entries.values()):
                if self._bytes <= self.max_bytes:
                    break
                if not state.pins:
                    victims.append(self._evict_one(state))
        await self._remove_victims(victims)

    def _evict_one(self, state: EntryState) -> tuple[EntryState, Path]:
        """Take an unpinned entry out of the book; the caller moves its directory out (`_remove_victims`)."""
        del self._entries[state.hex]
        self._bytes -= state.index.total_bytes
        self._evictions += 1
        state.doomed = True
        log.info("cache %s: evicting %s (%d bytes)", self.root, state.hex, state.index.total_bytes)
        return state, self.scratch_path("trash")

    async def _remove_victims(self, victims: list[tuple[EntryState, Path]]) -> None:
        with trio.CancelScope(shield=True):
            if victims:
                await self._unpublish(victims)
                self._pending_trash.extend(trash for _, trash in victims)
            await self._empty_trash()

    # -- a full filesystem -------------------------------------------------------------------------------

    async def retry_when_full(self, what: str, attempt: Callable[[], Awaitable[T]], *, need: int = 0) -> T:
        """Run a write; when it fails because the filesystem is full, make room and run it once more.

        Making room evicts unpinned entries, least recently used first, until ``min_free_bytes + need`` bytes
        look free (at least one entry). ``attempt`` must leave nothing behind when it fails. Each failure on a
        full disk is counted (`disk_full`).

        Raises:
            CacheFull: the disk was full and nothing could be evicted, or it was still full after eviction.
        """
        try:
            return await attempt()
        except Exception as exc:
            error = disk_full_error(exc)
            if error is None:
                raise
            self._disk_full += 1
            evicted, freed = await self._make_room(need)
            if not evicted:
                free = await self.free_bytes()
                raise CacheFull(
                    f"cache disk full: {what}: {error.strerror} ({free} bytes free under {self.root}; "
                    "no unused cache entry left to evict)",
                    free_bytes=free,
                ) from exc
            log.warning(
                "cache %s: disk full writing %s: evicted %d unused entries (%d bytes); trying once more",
                self.root, what, evicted, freed,
            )
        try:
            return await attempt()
        except Exception as exc:
            error = disk_full_error(exc)
            if error is None:
                raise
            self._disk_full += 1
            free = await self.free_bytes()
            raise CacheFull(
                f"cache disk full: {what}: {error.strerror} ({free} bytes free under {self.root} after evicting "
                f"{evicted} unused entries)",
                free_bytes=free,
            ) from exc

    async def _make_room(self, need: int) -> tuple[int, int]:
        """Evict unpinned entries until ``min_free_bytes + need`` look free; return (entries, bytes) evicted."""
        free = max(await self.free_bytes(), 0)
        want = self.min_free_bytes + need
        victims: list[tuple[EntryState, Path]] = []
        freed = 0
        for state in list(self._entries.values()):
            if victims and free + freed >= want:
                break
            if not state.pins:
                freed += state.index.total_bytes
                victims.append(self._evict_one(state))
        await self._remove_victims(victims)
        return len(victims), freed

    async def free_bytes(self) -> int:
        """Free bytes of the cache's filesystem (for an unprivileged writer); -1 when it cannot be read."""
        try:
            return await trio.to_thread.run_sync(free_bytes, self.root)
        except OSError as exc:
            log.warning("cache %s: cannot read the free space: %s", self.root, exc)
            return -1

    async def _unpublish(self, moves: list[tuple[EntryState, Path]]) -> None:
        """Rename entry directories into the scratch area; while that runs, acquisitions of them wait."""
        events = {state.hex: trio.Event() for state, _ in moves}
        self._removing.update(events)

        def move() -> None:
            for state, trash in moves:
                try:
                    os.rename(state.path, trash)
                except FileNotFoundError:
                    trash.mkdir()  # already gone (another process); keep the later rmtree uniform
                state.path = trash

        try:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(move)
        finally:
            for hex_digest, event in events.items():
                del self._removing[hex_digest]
                event.set()

    async def _empty_trash(self) -> None:
        if self._pending_trash:
            paths, self._pending_trash = self._pending_trash, []

            def remove() -> None:
                for path in paths:
                    rmtree_quiet(path)

            await trio.to_thread.run_sync(remove)
