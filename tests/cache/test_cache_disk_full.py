"""A full filesystem under the disk cache: a real 20 MiB tmpfs, real ENOSPC.

A write that finds the disk full evicts unused entries (least recently used first) and tries once more; when
that cannot help it raises `CacheFull` ("cache disk full: ...") and leaves no partial file behind.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cache import CacheError, CacheFull, DiskCache
from cache._fs import disk_full_error
from tests.cache.cache_testkit import Source
from tests.cache.small_fs import MIB, drop_ballast, free_bytes, leave_free, small_filesystem

FS_SIZE = 20 * MIB


@pytest.fixture
def fs(tmp_path: Path) -> Iterator[Path]:
    with small_filesystem(tmp_path / "small", FS_SIZE) as mounted:
        yield mounted


def scratch_files(root: Path) -> list[str]:
    """Whatever is left in the scratch areas (lock files aside): a failed write must leave nothing."""
    tmp = root / ".tmp"
    return sorted(
        os.path.relpath(os.path.join(dirpath, name), tmp)
        for dirpath, dirnames, filenames in os.walk(tmp)
        for name in filenames + dirnames
        if not name.endswith(".lock") and os.path.dirname(os.path.join(dirpath, name)) != str(tmp)
    )


def big(tag: str, size: int) -> Source:
    return Source({"entry.wasm": os.urandom(size), "manifest.json": b"{}"}, tag=tag)


async def test_full_disk_with_nothing_to_evict_raises_cache_full_and_leaves_nothing(fs: Path) -> None:
    root = fs / "cache"
    async with DiskCache(root, min_free_bytes=MIB) as cache:
        leave_free(fs, 2 * MIB)
        wanted = big("b", 6 * MIB)
        with pytest.raises(CacheFull, match=r"^cache disk full: entry [0-9a-f]{64}: No space left") as caught:
            async with cache.entry(wanted.hex, wanted.fill):
                pass
        assert "no unused cache entry left to evict" in str(caught.value)
        assert isinstance(caught.value, CacheError)
        assert caught.value.code == "cache_full"
        assert 0 <= caught.value.free_bytes <= 2 * MIB
        assert wanted.fills == 1, "nothing was evicted, so nothing was tried again"
        assert not cache.contains(wanted.hex)
        assert not (root / wanted.hex).exists()
        assert scratch_files(root) == []
        assert free_bytes(fs) >= 2 * MIB - 64 * 1024, "the partial fill's bytes were given back"
        stats = cache.statistics()
        assert (stats.disk_full, stats.evictions, stats.entries) == (1, 0, 0)

        # Room again: the same hash fills normally.
        drop_ballast(fs)
        async with cache.entry(wanted.hex, wanted.fill) as entry:
            assert await entry.open_verified("entry.wasm") == wanted.files["entry.wasm"]


async def test_older_unpinned_entry_is_evicted_to_make_room(fs: Path) -> None:
    root = fs / "cache"
    async with DiskCache(root, min_free_bytes=MIB) as cache:
        old, recent, wanted = big("old", 5 * MIB), big("recent", 5 * MIB), big("new", 6 * MIB)
        for src in (old, recent):
            async with cache.entry(src.hex, src.fill):
                pass
        leave_free(fs, 3 * MIB)
        async with cache.entry(wanted.hex, wanted.fill) as entry:
            assert await entry.open_verified("entry.wasm") == wanted.files["entry.wasm"]
        assert wanted.fills == 2, "the fill ran again once the eviction had made room"
        assert not cache.contains(old.hex), "the least recently used went"
        assert not (root / old.hex).exists()
        assert cache.contains(recent.hex), "one eviction sufficed"
        assert (root / recent.hex).is_dir()
        stats = cache.statistics()
        assert (stats.disk_full, stats.evictions) == (1, 1)
        assert scratch_files(root) == []


async def test_pinned_entries_are_never_evicted_for_room(fs: Path) -> None:
    root = fs / "cache"
    async with DiskCache(root, min_free_bytes=MIB) as cache:
        held, wanted = big("held", 5 * MIB), big("new", 6 * MIB)
        async with cache.entry(held.hex, held.fill) as entry:
            leave_free(fs, 2 * MIB)
            with pytest.raises(CacheFull, match="no unused cache entry left to evict"):
                async with cache.entry(wanted.hex, wanted.fill):
                    pass
            assert await entry.open_verified("entry.wasm") == held.files["entry.wasm"]
        assert cache.contains(held.hex)
        assert scratch_files(root) == []


async def test_gives_up_after_one_retry_when_eviction_is_not_enough(fs: Path) -> None:
    root = fs / "cache"
    async with DiskCache(root, min_free_bytes=0) as cache:
        small, wanted = big("small", 1 * MIB), big("huge", 8 * MIB)
        async with cache.entry(small.hex, small.fill):
            pass
        leave_free(fs, 2 * MIB)
        with pytest.raises(CacheFull, match=r"after evicting 1 unused entries"):
            async with cache.entry(wanted.hex, wanted.fill):
                pass
        stats = cache.statistics()
        assert (stats.disk_full, stats.evictions, stats.entries) == (2, 1, 0)
        assert scratch_files(root) == []
        assert sorted(os.listdir(root)) == [".locks", ".tmp"]


async def test_added_file_evicts_others_then_gives_up_without_leaving_it(fs: Path) -> None:
    root = fs / "cache"
    async with DiskCache(root, min_free_bytes=0) as cache:
        other, target = big("other", 4 * MIB), big("target", 1 * MIB)
        async with cache.entry(other.hex, other.fill):
            pass
        async with cache.entry(target.hex, target.fill) as entry:
            leave_free(fs, 1 * MIB)
            path = await entry.add_file("precompiled/x.cwasm", os.urandom(3 * MIB))
            assert path.stat().st_size == 3 * MIB
            assert not cache.contains(other.hex), "the unused entry made room for the artifact"

            leave_free(fs, 1 * MIB)
            with pytest.raises(CacheFull, match=r"precompiled/y\.cwasm of entry .*no unused cache entry"):
                await entry.add_file("precompiled/y.cwasm", os.urandom(3 * MIB))
            assert not entry.has("precompiled/y.cwasm")
            assert not (entry.path / "precompiled" / "y.cwasm").exists()
            assert entry.has("precompiled/x.cwasm")
        assert scratch_files(root) == []
        assert cache.statistics().disk_full == 2


@pytest.mark.parametrize(
    "wrap",
    [
        lambda e: e,
        lambda e: RuntimeError("fill failed"),
        lambda e: ExceptionGroup("fills", [ValueError("other"), e]),
    ],
    ids=["bare", "chained", "grouped"],
)
def test_disk_full_is_found_behind_wrappers(wrap: Callable[[OSError], BaseException]) -> None:
    enospc = OSError(errno.ENOSPC, "No space left on device")

    def write() -> None:
        try:
            raise enospc
        except OSError as exc:
            raise wrap(exc) from exc

    with pytest.raises(BaseException) as caught:  # noqa: PT011 -- whatever the wrapper raised
        write()
    assert disk_full_error(caught.value) is enospc
    assert disk_full_error(OSError(errno.EDQUOT, "Disk quota exceeded")) is not None
    assert disk_full_error(OSError(errno.EIO, "I/O error")) is None
    assert disk_full_error(ValueError("no")) is None
