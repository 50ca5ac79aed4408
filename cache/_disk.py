"""Content-addressed, size-bounded LRU cache on disk with single-flight fills."""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Final, Self, final

import trio

from ._entry import CacheEntry, Fill, _EntryState
from ._errors import CacheClosed, CacheCorrupted, InvalidFill, InvalidKey
from ._flight import SingleFlight
from ._fs import (
    TMP_DIR,
    IndexData,
    ScratchArea,
    clean_dead_scratch,
    fsync_dir,
    load_entries,
    load_published,
    publish_entry,
    rmtree_quiet,
    scan_tree,
    write_durable,
)
from ._keys import INDEX_NAME, validate_hex
from ._stats import CacheStats

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES: Final = 4 * 1024**3
"""Default bound of the disk cache (``EXT_CACHE_MAX_BYTES``): 4 GiB."""
DEFAULT_ACCESS_PERSIST_INTERVAL: Final = 60.0
"""A hit rewrites index.json's ``last_access`` at most this often (seconds) per entry."""


@final
class DiskCache:
    """Content-addressed entries under ``root``, bounded by ``max_bytes``, least recently used evicted first.

    Layout: ``<root>/<hex>/index.json`` lists every file with its size and sha256; entries appear by atomic
    rename of a finished scratch directory, so a crash leaves the old state or the new one. Opening the cache
    (``await cache.open()``, or lazily on first use) removes leftovers of dead processes and entries without a
    valid index. Several processes may share a root: each owns a locked scratch area under ``<root>/.tmp/``;
    pins and byte accounting are per process.

    Args:
        root: the cache directory (``EXT_CACHE_ROOT``); created if missing.
        max_bytes: bound on the bytes of all entries (``EXT_CACHE_MAX_BYTES``). An entry larger than this
            alone still goes in and is evicted as soon as it is unpinned.
        access_persist_interval: last access is kept in memory and written to index.json at most this often.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        access_persist_interval: float = DEFAULT_ACCESS_PERSIST_INTERVAL,
    ) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self._root = Path(root)
        self._max_bytes = max_bytes
        self._persist_interval = access_persist_interval
        self._entries: OrderedDict[str, _EntryState] = OrderedDict()  # least recently used first
        self._fills: SingleFlight[str, _EntryState] = SingleFlight(share=self._pin, unshare=self._unpin)
        self._removing: dict[str, trio.Event] = {}
        self._pending_trash: list[Path] = []
        self._scratch: ScratchArea | None = None
        self._open_lock = trio.Lock()
        self._closed = False
        self._bytes = 0
        self._hits = self._misses = self._fill_count = self._evictions = self._corrupted = 0

    @property
    def root(self) -> Path:
        return self._root

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def open(self) -> Self:
        """Create the root, remove leftovers of crashed processes and load every valid entry. Idempotent."""
        async with self._open_lock:
            self._check_open()
            if self._scratch is None:
                self._scratch, entries = await trio.to_thread.run_sync(self._open_sync)
                for index in sorted(entries, key=lambda i: i.last_access):
                    self._insert(index)
                await self._evict()
        return self

    def _open_sync(self) -> tuple[ScratchArea, list[IndexData]]:
        self._root.mkdir(parents=True, exist_ok=True)
        scratch = ScratchArea(self._root / TMP_DIR)
        removed, alone = clean_dead_scratch(self._root / TMP_DIR, scratch.token)
        if removed:
            log.info("cache %s: removed %d scratch areas left by dead processes", self._root, removed)
        return scratch, load_entries(self._root, scratch, remove_unlisted=alone)

    async def aclose(self) -> None:
        """Write pending last-access times, remove this process's scratch area and release its lock."""
        async with self._open_lock:
            if self._closed:
                return
            if self._scratch is not None:
                with trio.CancelScope(shield=True):
                    for state in list(self._entries.values()):
                        if state.index.last_access > state.persisted_access:
                            async with state.lock:
                                await self._write_index(state, best_effort=True)
                    await trio.to_thread.run_sync(self._scratch.close)
            self._closed = True

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise CacheClosed(f"cache {self._root} is closed")

    async def _ensure_open(self) -> None:
        self._check_open()
        if self._scratch is None:
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
        handle = CacheEntry(self, state)
        try:
            yield handle
        finally:
            handle._released = True
            await self._release(state)

    def lookup(self, hex_digest: str) -> AbstractAsyncContextManager[CacheEntry | None]:
        """Pin the entry if this process has it cached, without filling: yields None otherwise."""
        validate_hex(hex_digest)
        return self._lookup_cm(hex_digest)

    @asynccontextmanager
    async def _lookup_cm(self, hex_digest: str) -> AsyncIterator[CacheEntry | None]:
        await self._ensure_open()
        await self._wait_removal(hex_digest)
        state = self._entries.get(hex_digest)
        if state is None:
            yield None
            return
        self._pin(state)
        self._touch(state)
        handle = CacheEntry(self, state)
        try:
            yield handle
        finally:
            handle._released = True
            await self._release(state)

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
        return validate_hex(hex_digest) in self._entries

    async def discard(self, hex_digest: str) -> bool:
        """Drop an entry now (its files go when the last pin is released); return whether it was cached."""
        state = self._entries.get(validate_hex(hex_digest))
        if state is None:
            return False
        await self._drop(state, corrupted=False)
        return True

    @asynccontextmanager
    async def temp_dir(self) -> AsyncIterator[Path]:
        """A fresh scratch directory on the cache's filesystem, removed on exit."""
        await self._ensure_open()
        path = self._scratch_path("tmp")
        await trio.to_thread.run_sync(path.mkdir)
        try:
            yield path
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(rmtree_quiet, path)

    def statistics(self) -> CacheStats:
        return CacheStats(
            hits=self._hits,
            misses=self._misses,
            fills=self._fill_count,
            evictions=self._evictions,
            corrupted=self._corrupted,
            bytes=self._bytes,
            entries=len(self._entries),
            pinned=sum(1 for state in self._entries.values() if state.pins),
        )

    # -- acquisition and fills ---------------------------------------------------------------------------

    async def _acquire(self, hex_digest: str, fill: Fill) -> _EntryState:
        await self._ensure_open()
        await self._wait_removal(hex_digest)
        state = self._entries.get(hex_digest)
        if state is not None:
            self._hits += 1
            self._pin(state)
            self._touch(state)
            return state
        self._misses += 1
        state, _ = await self._fills.run(hex_digest, lambda: self._load_or_fill(hex_digest, fill))
        try:
            await self._evict()
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._release(state)
            raise
        return state

    async def _load_or_fill(self, hex_digest: str, fill: Fill) -> _EntryState:
        await self._wait_removal(hex_digest)
        state = self._entries.get(hex_digest)
        if state is None:
            path = self._root / hex_digest
            # Another process sharing the root may have published it.
            index = await trio.to_thread.run_sync(load_published, path, hex_digest)
            if index is None:
                self._fill_count += 1
                index = await self._fill(hex_digest, fill)
            state = self._insert(index)
        self._pin(state)
        self._touch(state)
        return state

    async def _fill(self, hex_digest: str, fill: Fill) -> IndexData:
        tmp = self._scratch_path("fill")
        await trio.to_thread.run_sync(tmp.mkdir)
        try:
            await fill(tmp)
            return await trio.to_thread.run_sync(self._publish_sync, hex_digest, tmp)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(rmtree_quiet, tmp)
            raise

    def _publish_sync(self, hex_digest: str, tmp: Path) -> IndexData:
        try:
            files, dropped = scan_tree(tmp)
        except (ValueError, InvalidKey) as exc:
            raise InvalidFill(f"fill for {hex_digest}: {exc}") from exc
        if dropped:
            log.warning("cache entry %s: ignored %s shipped by the fill", hex_digest, ", ".join(dropped))
        now = time.time()
        index = IndexData(hex_digest, files, set(), now, now)
        return publish_entry(self._root, index, tmp, self._scratch_path("trash"))

    # -- bookkeeping -------------------------------------------------------------------------------------

    def _scratch_path(self, kind: str) -> Path:
        self._check_open()
        assert self._scratch is not None, "cache used before open()"
        return self._scratch.new_path(kind)

    def _insert(self, index: IndexData) -> _EntryState:
        state = _EntryState(index.hex, self._root / index.hex, index)
        self._entries[index.hex] = state
        self._bytes += index.total_bytes
        return state

    def _account(self, state: _EntryState, delta: int) -> None:
        if self._entries.get(state.hex) is state:
            self._bytes += delta

    @staticmethod
    def _pin(state: _EntryState) -> None:
        state.pins += 1

    def _unpin(self, state: _EntryState) -> None:
        state.pins -= 1
        if state.doomed and state.pins == 0:
            self._pending_trash.append(state.path)

    def _touch(self, state: _EntryState) -> None:
        if self._entries.get(state.hex) is state:
            self._entries.move_to_end(state.hex)
        state.index.last_access = time.time()

    async def _release(self, state: _EntryState) -> None:
        self._unpin(state)
        # Runs on every exit path, cancelled or not: finish the bookkeeping it starts.
        with trio.CancelScope(shield=True):
            if (
                not state.doomed
                and state.index.last_access - state.persisted_access >= self._persist_interval
                and not self._closed
            ):
                async with state.lock:
                    await self._write_index(state, best_effort=True)
            await self._evict()

    async def _write_index(self, state: _EntryState, *, best_effort: bool = False) -> None:
        """Rewrite index.json from memory (scratch file, fsync, rename over the old one).

        The caller holds ``state.lock``, so two rewrites never race and an older snapshot never wins.
        """
        state.persisted_access = state.index.last_access
        data = state.index.to_json()
        scratch = self._scratch_path("index")
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

    async def _wait_removal(self, hex_digest: str) -> None:
        while (event := self._removing.get(hex_digest)) is not None:
            await event.wait()

    async def _drop(self, state: _EntryState, *, corrupted: bool) -> None:
        """Unpublish an entry at once (so a refill can take its place); delete its files once unpinned."""
        if state.doomed:
            return
        state.doomed = True
        if self._entries.get(state.hex) is state:
            del self._entries[state.hex]
            self._bytes -= state.index.total_bytes
        if corrupted:
            self._corrupted += 1
        trash = self._scratch_path("trash")
        await self._unpublish([(state, trash)])
        if state.pins == 0:
            self._pending_trash.append(trash)
        with trio.CancelScope(shield=True):
            await self._empty_trash()

    async def _evict(self) -> None:
        """Remove least recently used unpinned entries until the cache is within ``max_bytes``."""
        victims: list[tuple[_EntryState, Path]] = []
        if self._bytes > self._max_bytes:
            for state in list(self._entries.values()):
                if self._bytes <= self._max_bytes:
                    break
                if state.pins:
                    continue
                del self._entries[state.hex]
                self._bytes -= state.index.total_bytes
                self._evictions += 1
                state.doomed = True
                victims.append((state, self._scratch_path("trash")))
                log.info("cache %s: evicting %s (%d bytes)", self._root, state.hex, state.index.total_bytes)
        with trio.CancelScope(shield=True):
            if victims:
                await self._unpublish(victims)
                self._pending_trash.extend(trash for _, trash in victims)
            await self._empty_trash()

    async def _unpublish(self, moves: list[tuple[_EntryState, Path]]) -> None:
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
