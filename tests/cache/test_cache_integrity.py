"""Integrity: a corrupted or missing cached file is detected on load, the entry dropped and refetched."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cache import CacheCorrupted, DiskCache, NotCached
from tests.cache.cache_testkit import Source

Consistent = Callable[[Path], dict[str, dict[str, bytes]]]


def flip_first_byte(path: Path) -> None:
    """Same size, different bytes: what a bad sector or a stray write does."""
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    stat = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old mtime


async def test_corruption_found_after_restart_is_refetched(
    cache_root: Path, source: Callable[..., Source], consistent: Consistent
) -> None:
    src = source("a", files={"entry.wasm": b"\0asm good bytes", "ui/app.js": b"js"})
    async with DiskCache(cache_root) as cache, cache.entry(src.hex, src.fill):
        pass
    flip_first_byte(cache_root / src.hex / "entry.wasm")

    async with DiskCache(cache_root) as cache:
        async with cache.entry(src.hex, src.fill) as entry:
            # The first load in this process hashes the file.
            with pytest.raises(CacheCorrupted) as caught:
                await entry.verify("entry.wasm")
            assert (caught.value.hex, caught.value.relpath, caught.value.reason) == (
                src.hex,
                "entry.wasm",
                "sha256 mismatch",
            )
            assert not cache.contains(src.hex)
        assert not (cache_root / src.hex).exists()
        assert src.fills == 1
        async with cache.entry(src.hex, src.fill) as entry:
            assert (await entry.verify("entry.wasm")).read_bytes() == b"\0asm good bytes"
        stats = cache.statistics()
    assert src.fills == 2
    assert (stats.corrupted, stats.fills, stats.entries) == (1, 1, 1)
    assert consistent(cache_root) == {src.hex: src.files}


async def test_read_verified_refills_a_corrupted_entry_once(cache_root: Path, source: Callable[..., Source]) -> None:
    src = source("a", size=64)
    async with DiskCache(cache_root) as cache:
        assert await cache.read_verified(src.hex, "entry.wasm", src.fill) == src.files["entry.wasm"]
        (cache_root / src.hex / "entry.wasm").write_bytes(b"truncated")
        assert await cache.read_verified(src.hex, "entry.wasm", src.fill) == src.files["entry.wasm"]
        assert cache.statistics().corrupted == 1
    assert src.fills == 2


async def test_rewritten_or_missing_files_are_caught_in_a_running_process(
    cache_root: Path, source: Callable[..., Source]
) -> None:
    src = source("a", files={"entry.wasm": b"0123456789", "ui/index.html": b"<html>"})
    async with DiskCache(cache_root) as cache:
        # A rewrite with another size is seen by the cheap stat re-check.
        async with cache.entry(src.hex, src.fill) as entry:
            path = await entry.verify("entry.wasm")
            path.write_bytes(b"012345678")
            with pytest.raises(CacheCorrupted, match="size mismatch"):
                await entry.verify("entry.wasm")

        # Same size, mtime put back: a full re-hash still sees it, and open_verified always hashes.
        async with cache.entry(src.hex, src.fill) as entry:
            await entry.verify("ui/index.html")
            flip_first_byte(entry.path / "ui/index.html")
            with pytest.raises(CacheCorrupted):
                await entry.verify("ui/index.html", full=True)
        async with cache.entry(src.hex, src.fill) as entry:
            await entry.verify("entry.wasm")
            flip_first_byte(entry.path / "entry.wasm")
            with pytest.raises(CacheCorrupted):
                await entry.open_verified("entry.wasm")

        # A file deleted behind the cache's back.
        async with cache.entry(src.hex, src.fill) as entry:
            (entry.path / "ui/index.html").unlink()
            with pytest.raises(CacheCorrupted, match="missing"):
                await entry.open_verified("ui/index.html")
        assert cache.statistics().corrupted == 4
    assert src.fills == 4  # the first fill, then one per corruption but the last


async def test_unlisted_file_is_not_cached_not_corrupted(cache_root: Path, source: Callable[..., Source]) -> None:
    src = source("a")
    async with DiskCache(cache_root) as cache, cache.entry(src.hex, src.fill) as entry:
        (entry.path / "stray.txt").write_bytes(b"not in the index")
        with pytest.raises(NotCached):
            await entry.open_verified("stray.txt")
        assert cache.contains(src.hex)
        assert cache.statistics().corrupted == 0


async def test_corrupted_entry_pinned_elsewhere_is_replaced_and_freed_later(
    cache_root: Path, source: Callable[..., Source], consistent: Consistent
) -> None:
    src = source("a", files={"entry.wasm": b"wasm", "ui/index.html": b"<html>"})
    async with DiskCache(cache_root) as cache:
        async with cache.entry(src.hex, src.fill) as holder:
            async with cache.entry(src.hex, src.fill) as entry:
                (entry.path / "entry.wasm").write_bytes(b"bad!")
                with pytest.raises(CacheCorrupted):
                    await entry.open_verified("entry.wasm")
            # The slot is free at once: a new request refills while the old holder is still working...
            async with cache.entry(src.hex, src.fill) as fresh:
                assert await fresh.open_verified("entry.wasm") == b"wasm"
                assert fresh.path == cache_root / src.hex
            # ...and the old holder can still finish reading what is intact.
            assert await holder.open_verified("ui/index.html") == b"<html>"
            assert holder.path != cache_root / src.hex
        # Released: the dropped copy is gone, only the fresh entry remains.
        scratch = [n for n in os.listdir(cache_root / ".tmp") if not n.endswith(".lock")]
        assert [os.listdir(cache_root / ".tmp" / n) for n in scratch] == [[]]
        assert consistent(cache_root) == {src.hex: src.files}
        assert cache.statistics().bytes == 4 + 6
    assert src.fills == 2
