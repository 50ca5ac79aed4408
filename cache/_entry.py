"""A pinned cache entry: verified reads, files added later, and lazily filled subtrees.

A `CacheEntry` is the holder's view of one entry of a `DiskCache`; what it changes in the process's book
(bytes, index.json, eviction, dropping a corrupted entry) goes through the `EntryTable` (``_table.py``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from types import MappingProxyType
from typing import final

import trio

from ._errors import CacheCorrupted, CacheError, InvalidFill, InvalidKey, NotCached
from ._fs import (
    FileInfo,
    fsync_dir,
    hash_file,
    rmtree_quiet,
    scan_tree,
    stat_key,
    write_durable,
)
from ._keys import INDEX_NAME, validate_relpath, validate_subtree
from ._table import EntryState, EntryTable

Fill = Callable[[Path], Awaitable[None]]


@final
class CacheEntry:
    """A pinned entry of a `DiskCache`, valid inside its ``async with cache.entry(...)`` block.

    While any handle pins it, eviction never removes the entry. Reads are checked against the sha256 recorded
    in index.json: a mismatch or a missing file drops the entry and raises `CacheCorrupted`.
    """

    __slots__ = ("_released", "_state", "_table")

    def __init__(self, table: EntryTable, state: EntryState) -> None:
        self._table = table
        self._state = state
        self._released = False

    def __repr__(self) -> str:
        return f"<CacheEntry {self._state.hex} files={len(self._state.index.files)}>"

    @property
    def hex(self) -> str:
        return self._state.hex

    @property
    def path(self) -> Path:
        """The entry's directory (read-only by convention; use the methods to change it)."""
        return self._state.path

    @property
    def files(self) -> Mapping[str, FileInfo]:
        return MappingProxyType(self._state.index.files)

    @property
    def total_bytes(self) -> int:
        return self._state.index.total_bytes

    def has(self, relpath: str) -> bool:
        return validate_relpath(relpath) in self._state.index.files

    def has_subtree(self, name: str) -> bool:
        return validate_subtree(name) in self._state.index.subtrees

    def _live(self) -> EntryState:
        if self._released:
            raise CacheError(f"cache entry {self._state.hex} used after its block ended")
        self._table.check_open()
        return self._state

    def _info(self, relpath: str) -> FileInfo:
        info = self._live().index.files.get(validate_relpath(relpath))
        if info is None:
            raise NotCached(f"cache entry {self._state.hex} has no file {relpath!r}")
        return info

    async def verify(self, relpath: str, *, full: bool = False) -> Path:
        """Return the path of an intact file of this entry.

        The first check per process hashes the file; later ones compare size, mtime, ctime and inode with that
        check and hash again only when one changed (``full=True`` always hashes).

        Raises:
            NotCached: index.json does not list ``relpath``.
            CacheCorrupted: the file is missing or its bytes changed; the entry has been dropped.
        """
        info = self._info(relpath)
        state = self._state
        path = state.path / relpath
        known = None if full else state.verified.get(relpath)

        def check() -> tuple[int, int, int, int] | str:
            try:
                before = stat_key(path)
                if before == known:
                    return before
                found = hash_file(path)
                after = stat_key(path)
            except OSError:
                return "missing"
            if found != info:
                return "sha256 mismatch" if found.size == info.size else "size mismatch"
            return after if after == before else "changed while verifying"

        result = await trio.to_thread.run_sync(check)
        if isinstance(result, str):
            await self._table.drop(state, corrupted=True)
            raise CacheCorrupted(state.hex, relpath, result)
        state.verified[relpath] = result
        return path

    async def open_verified(self, relpath: str) -> bytes:
        """Read a file of this entry and check the bytes returned against its sha256 (no re-read race).

        Raises:
            NotCached: index.json does not list ``relpath``.
            CacheCorrupted: the file is missing or its bytes changed; the entry has been dropped.
        """
        info = self._info(relpath)
        state = self._state
        path = state.path / relpath

        def read() -> bytes | str:
            try:
                with open(path, "rb") as fh:
                    data = fh.read(info.size + 1)
            except OSError:
                return "missing"
            if len(data) != info.size:
                return "size mismatch"
            if hashlib.sha256(data).hexdigest() != info.sha256:
                return "sha256 mismatch"
            return data

        result = await trio.to_thread.run_sync(read)
        if isinstance(result, str):
            await self._table.drop(state, corrupted=True)
            raise CacheCorrupted(state.hex, relpath, result)
        return result

    async def refresh(self) -> None:
        """Adopt what another process sharing the cache root added to (or removed from) this entry since."""
        async with self._table.mutating(self._live()):
            pass

    def _check_writable(self, relpath: str) -> None:
        state = self._live()
        validate_relpath(relpath)
        head = relpath.split("/", 1)[0]
        if relpath == INDEX_NAME or head in state.index.subtrees or state.subtrees.in_flight(head):
            raise InvalidKey(f"{relpath!r} is index.json or inside a subtree of entry {state.hex}")

    async def add_file(self, relpath: str, data: bytes | bytearray | memoryview) -> Path:
        """Write a file into the entry atomically and record it in index.json (replacing any old version).

        The file is renamed into place before index.json is rewritten: a crash in between leaves an unlisted
        file, which the next start removes, never a listed file that is missing.

        Raises:
            CacheFull: the filesystem stayed full after eviction; no new file was left behind.
        """
        self._check_writable(relpath)
        state = self._state
        table = self._table
        dest = state.path / relpath
        view = memoryview(data)

        def place(scratch: Path) -> tuple[FileInfo, tuple[int, int, int, int]]:
            info = FileInfo(view.nbytes, hashlib.sha256(view).hexdigest())
            try:
                write_durable(scratch, data)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(scratch, dest)
            except BaseException:
                rmtree_quiet(scratch)
                raise
            fsync_dir(dest.parent)
            return info, stat_key(dest)

        async def attempt() -> tuple[FileInfo, tuple[int, int, int, int]]:
            return await trio.to_thread.run_sync(place, table.scratch_path("file"))

        async with table.mutating(state):
            try:
                info, key = await table.retry_when_full(f"{relpath} of entry {state.hex}", attempt, need=view.nbytes)
            except FileNotFoundError:
                # Another process removed the entry's directory under us.
                await table.drop(state, corrupted=True)
                raise CacheCorrupted(state.hex, relpath, "entry directory vanished") from None
            old = state.index.files.get(relpath)
            state.index.files[relpath] = info
            state.verified[relpath] = key
            table.account(state, info.size - (old.size if old else 0))
            try:
                await table.retry_when_full(f"index.json of entry {state.hex}", lambda: table.write_index(state))
            except (OSError, CacheError):
                if old is None:
                    # Unlisted on disk: take it back out rather than leave a file index.json does not know.
                    del state.index.files[relpath]
                    state.verified.pop(relpath, None)
                    table.account(state, -info.size)
                    with trio.CancelScope(shield=True):
                        await trio.to_thread.run_sync(rmtree_quiet, dest)
                raise
        await table.evict()
        return dest

    async def remove_file(self, relpath: str) -> bool:
        """Remove a file from the entry (index.json first, then the file); return whether it was listed."""
        self._check_writable(relpath)
        state = self._state
        table = self._table
        async with table.mutating(state):
            old = state.index.files.pop(relpath, None)
            if old is None:
                return False
            state.verified.pop(relpath, None)
            self._table.account(state, -old.size)
            await self._table.write_index(state)
            await trio.to_thread.run_sync(rmtree_quiet, state.path / relpath)
        return True

    async def ensure_subtree(self, name: str, fill: Fill) -> Path:
        """Return the directory of subtree ``name`` (e.g. ``"ui"``), filling it first if needed.

        ``fill`` gets a fresh empty directory and writes the subtree there; the cache hashes it, renames it into
        the entry and lists its files in index.json. Concurrent calls for one subtree run ``fill`` once; a
        failure reaches every waiter and a later call tries again.
        """
        validate_subtree(name)
        state = self._live()
        if name in state.index.subtrees:
            return state.path / name
        path, _ = await state.subtrees.run(name, lambda: self._fill_subtree(name, fill))
        return path

    async def _fill_subtree(self, name: str, fill: Fill) -> Path:
        state = self._live()
        table = self._table
        if name in state.index.subtrees:
            return state.path / name
        if any(rel.split("/", 1)[0] == name for rel in state.index.files):
            raise InvalidKey(f"entry {state.hex} already has files under {name!r} that are not a subtree")

        async def attempt() -> tuple[Path, dict[str, FileInfo]]:
            tmp = table.scratch_path("subtree")
            try:
                await trio.to_thread.run_sync(tmp.mkdir)
                await fill(tmp)
                try:
                    files, _ = await trio.to_thread.run_sync(lambda: scan_tree(tmp, prefix=name))
                except (ValueError, InvalidKey) as exc:
                    raise InvalidFill(f"subtree {name!r} of {state.hex}: {exc}") from exc
            except BaseException:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(rmtree_quiet, tmp)
                raise
            return tmp, files

        tmp, files = await table.retry_when_full(f"subtree {name!r} of entry {state.hex}", attempt)
        try:
            async with table.mutating(state):
                dest = state.path / name
                trash = table.scratch_path("trash")

                def publish() -> None:
                    if os.path.lexists(dest):
                        # An unlisted leftover of a crash between this rename and the index rewrite.
                        os.rename(dest, trash)
                        rmtree_quiet(trash)
                    os.rename(tmp, dest)
                    fsync_dir(state.path)

                await trio.to_thread.run_sync(publish)
                state.index.files.update(files)
                state.index.subtrees.add(name)
                table.account(state, sum(info.size for info in files.values()))
                await table.retry_when_full(f"index.json of entry {state.hex}", lambda: table.write_index(state))
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(rmtree_quiet, tmp)
            raise
        await table.evict()
        return state.path / name


@asynccontextmanager
async def pinned_entry(table: EntryTable, state: EntryState) -> AsyncIterator[CacheEntry]:
    """A handle on ``state``, which the caller has pinned; the pin is released (through the table) on exit."""
    handle = CacheEntry(table, state)
    try:
        yield handle
    finally:
        await release_entry(table, handle)


async def release_entry(table: EntryTable, handle: CacheEntry) -> None:
    """Give back the pin ``handle`` holds, once (a second call does nothing)."""
    if handle._released:
        return
    handle._released = True
    await table.release(handle._state)
