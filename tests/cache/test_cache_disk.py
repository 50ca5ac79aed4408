"""DiskCache: layout, LRU order, capacity, pins, lazy last-access, subtrees, added files, shared roots."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.lowlevel

from cache import (
    CacheClosed,
    CacheError,
    DiskCache,
    InvalidFill,
    InvalidKey,
    NotCached,
)
from tests.cache.cache_testkit import Source

Consistent = Callable[[Path], dict[str, dict[str, bytes]]]


def index_of(root: Path, hex_digest: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((root / hex_digest / "index.json").read_bytes())
    return data


async def test_miss_fills_then_hits(cache_root: Path, source: Callable[..., Source], consistent: Consistent) -> None:
    src = source("a", files={"entry.wasm": b"\0asm-bytes", "manifest.json": b"{}", "ui/index.html": b"<p>"})
    async with DiskCache(cache_root) as cache:
        async with cache.entry(src.hex, src.fill) as entry:
            assert entry.path == cache_root / src.hex
            assert await entry.open_verified("entry.wasm") == b"\0asm-bytes"
            assert (await entry.verify("ui/index.html")).read_bytes() == b"<p>"
        async with cache.entry(src.hex, src.fill) as entry:
            assert entry.has("manifest.json")
        stats = cache.statistics()
    assert src.fills == 1
    assert (stats.hits, stats.misses, stats.fills, stats.entries) == (1, 1, 1, 1)
    assert stats.bytes == len(b"\0asm-bytes") + 2 + 3
    index = index_of(cache_root, src.hex)
    assert index["files"] == {
        rel: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()} for rel, data in src.files.items()
    }
    assert index["total_bytes"] == stats.bytes
    assert consistent(cache_root) == {src.hex: src.files}


async def test_reopen_loads_entries_without_filling(cache_root: Path, source: Callable[..., Source]) -> None:
    src = source("a", size=300)
    async with DiskCache(cache_root) as cache, cache.entry(src.hex, src.fill):
        pass
    async with DiskCache(cache_root) as cache:
        assert cache.contains(src.hex)
        assert cache.statistics().bytes == 300
        async with cache.entry(src.hex, src.fill) as entry:
            assert await entry.open_verified("entry.wasm") == src.files["entry.wasm"]
    assert src.fills == 1


async def test_least_recently_used_goes_first(cache_root: Path, source: Callable[..., Source]) -> None:
    a, b, c, d = (source(tag, size=100) for tag in "abcd")
    async with DiskCache(cache_root, max_bytes=300) as cache:
        for src in (a, b, c):
            async with cache.entry(src.hex, src.fill):
                pass
        async with cache.entry(a.hex, a.fill):  # a is now the most recently used
            pass
        async with cache.entry(d.hex, d.fill):
            pass
        assert not cache.contains(b.hex)
        assert all(cache.contains(s.hex) for s in (a, c, d))
        assert not (cache_root / b.hex).exists()
        stats = cache.statistics()
    assert (stats.evictions, stats.entries, stats.bytes) == (1, 3, 300)


async def test_pinned_entries_survive_pressure(cache_root: Path, source: Callable[..., Source]) -> None:
    a, b, c = (source(tag, size=100) for tag in "abc")
    async with DiskCache(cache_root, max_bytes=150) as cache:
        async with cache.entry(a.hex, a.fill) as pinned:
            async with cache.entry(b.hex, b.fill), cache.entry(c.hex, c.fill):
                # Everything is pinned: the cache stays over its bound rather than drop an entry in use.
                assert cache.statistics().bytes == 300
            # b and c are unpinned now; a is the least recently used but pinned, so b then c go.
            assert await pinned.open_verified("entry.wasm") == a.files["entry.wasm"]
            assert cache.contains(a.hex)
            assert cache.statistics().bytes <= 150
        assert cache.statistics().bytes <= 150
        assert cache.contains(a.hex)


async def test_entry_bigger_than_the_cap_goes_when_unpinned(cache_root: Path, source: Callable[..., Source]) -> None:
    big = source("big", size=1000)
    async with DiskCache(cache_root, max_bytes=100) as cache:
        async with cache.entry(big.hex, big.fill) as entry:
            assert await entry.open_verified("entry.wasm") == big.files["entry.wasm"]
        assert not cache.contains(big.hex)
        assert not (cache_root / big.hex).exists()
        assert cache.statistics().evictions == 1


async def test_last_access_is_persisted_lazily(cache_root: Path, source: Callable[..., Source]) -> None:
    src = source("a")
    async with DiskCache(cache_root, access_persist_interval=3600) as cache:
        async with cache.entry(src.hex, src.fill):
            pass
        first = index_of(cache_root, src.hex)["last_access"]
        for _ in range(5):
            async with cache.entry(src.hex, src.fill):
                pass
        # Hits within the interval do not rewrite index.json...
        assert index_of(cache_root, src.hex)["last_access"] == first
    # ...but closing writes what is pending.
    assert index_of(cache_root, src.hex)["last_access"] > first  # type: ignore[operator]

    async with DiskCache(cache_root, access_persist_interval=0) as cache:
        before = index_of(cache_root, src.hex)["last_access"]
        async with cache.entry(src.hex, src.fill):
            pass
        assert index_of(cache_root, src.hex)["last_access"] > before  # type: ignore[operator]


async def test_recency_survives_a_restart(cache_root: Path, source: Callable[..., Source]) -> None:
    a, b, c, d = (source(tag, size=100) for tag in "abcd")
    async with DiskCache(cache_root, max_bytes=1000) as cache:
        for src in (a, b, c, a):
            async with cache.entry(src.hex, src.fill):
                pass
    async with DiskCache(cache_root, max_bytes=300) as cache:
        async with cache.entry(d.hex, d.fill):
            pass
        assert [cache.contains(s.hex) for s in (a, b, c, d)] == [True, False, True, True]


async def test_a_smaller_bound_applies_at_open(cache_root: Path, source: Callable[..., Source]) -> None:
    srcs = [source(tag, size=100) for tag in "abcd"]
    async with DiskCache(cache_root) as cache:
        for src in srcs:
            async with cache.entry(src.hex, src.fill):
                pass
    async with DiskCache(cache_root, max_bytes=200) as cache:
        assert [cache.contains(s.hex) for s in srcs] == [False, False, True, True]
    assert sorted(os.listdir(cache_root)) == sorted([".locks", ".tmp", srcs[2].hex, srcs[3].hex])


async def test_fill_may_not_leave_symlinks_or_reserved_names(cache_root: Path, source: Callable[..., Source]) -> None:
    src = source("a")

    async def with_symlink(dest: Path) -> None:
        (dest / "entry.wasm").symlink_to("/etc/passwd")

    async def with_index(dest: Path) -> None:
        (dest / "index.json").write_text("{}")

    async with DiskCache(cache_root) as cache:
        for bad_fill in (with_symlink, with_index):
            with pytest.raises(InvalidFill):
                async with cache.entry(src.hex, bad_fill):
                    pass
            assert not (cache_root / src.hex).exists()
        async with cache.entry(src.hex, src.fill) as entry:
            assert entry.has("entry.wasm")


async def test_precompiled_files_from_a_fill_are_dropped(cache_root: Path, source: Callable[..., Source]) -> None:
    src = source("a", files={"entry.wasm": b"w", "precompiled/x86_64.cwasm": b"author native code"})
    async with DiskCache(cache_root) as cache, cache.entry(src.hex, src.fill) as entry:
        assert dict(entry.files).keys() == {"entry.wasm"}
        assert not (entry.path / "precompiled").exists()


async def test_keys_and_paths_are_validated(cache_root: Path, source: Callable[..., Source]) -> None:
    src = source("a")
    async with DiskCache(cache_root) as cache:
        for bad in ("A" * 64, "a" * 63, "../" + "a" * 61, "g" * 64):
            with pytest.raises(InvalidKey):
                cache.entry(bad, src.fill)
        async with cache.entry(src.hex, src.fill) as entry:
            for relpath in ("../x", "/etc/passwd", "a\\b", "a//b", "./a", "", "a/../../b", "x\0y", "index.json"):
                with pytest.raises(InvalidKey):
                    await entry.add_file(relpath, b"data")
            with pytest.raises(InvalidKey):
                await entry.verify("../../outside")
            with pytest.raises(NotCached):
                await entry.verify("nothing-here")
            for name in ("ui/x", "..", "precompiled", "index.json"):
                with pytest.raises(InvalidKey):
                    await entry.ensure_subtree(name, src.fill)
            # A 404-style miss does not drop the entry.
            assert await entry.open_verified("entry.wasm") == src.files["entry.wasm"]


async def test_added_files_are_indexed_and_counted(
    cache_root: Path, source: Callable[..., Source], consistent: Consistent
) -> None:
    src = source("a", size=10)
    async with DiskCache(cache_root) as cache:
        async with cache.entry(src.hex, src.fill) as entry:
            path = await entry.add_file("precompiled/t1.cwasm", b"artifact-1")
            assert path.read_bytes() == b"artifact-1"
            await entry.add_file("precompiled/t1.cwasm", b"artifact-one")  # replaced, not duplicated
            await entry.add_file("precompiled/t2.cwasm", bytearray(b"22"))
            assert await entry.remove_file("precompiled/t2.cwasm")
            assert not await entry.remove_file("precompiled/t2.cwasm")
        assert cache.statistics().bytes == 10 + len(b"artifact-one")
    files = consistent(cache_root)[src.hex]
    assert files["precompiled/t1.cwasm"] == b"artifact-one"
    async with DiskCache(cache_root) as cache, cache.entry(src.hex, src.fill) as entry:
        assert await entry.open_verified("precompiled/t1.cwasm") == b"artifact-one"
        assert cache.statistics().bytes == 10 + len(b"artifact-one")


async def test_subtree_is_filled_once_and_listed(
    cache_root: Path, source: Callable[..., Source], consistent: Consistent
) -> None:
    src = source("a")
    calls = 0

    async def fill_ui(dest: Path) -> None:
        nonlocal calls
        calls += 1
        await trio.lowlevel.checkpoint()
        (dest / "assets").mkdir()
        (dest / "index.html").write_bytes(b"<html>")
        (dest / "assets" / "app.js").write_bytes(b"js")

    async with DiskCache(cache_root) as cache, cache.entry(src.hex, src.fill) as entry:
        paths: list[Path] = []

        async def get_ui() -> None:
            paths.append(await entry.ensure_subtree("ui", fill_ui))

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(get_ui)
        assert calls == 1
        assert set(paths) == {entry.path / "ui"}
        assert entry.has_subtree("ui")
        assert await entry.open_verified("ui/assets/app.js") == b"js"
        assert await entry.ensure_subtree("ui", fill_ui) == entry.path / "ui"
        with pytest.raises(InvalidKey):
            await entry.add_file("ui/extra.js", b"no")
        assert cache.statistics().bytes == 100 + len(b"<html>") + 2
    files = consistent(cache_root)[src.hex]
    assert files["ui/index.html"] == b"<html>"


async def test_subtree_fill_error_reaches_every_waiter_and_is_retried(
    cache_root: Path, source: Callable[..., Source]
) -> None:
    src = source("a")
    boom = RuntimeError("archive unreadable")
    attempts = 0

    async def fill_ui(dest: Path) -> None:
        nonlocal attempts
        attempts += 1
        await trio.lowlevel.checkpoint()
        if attempts == 1:
            (dest / "half.html").write_bytes(b"partial")
            raise boom
        (dest / "index.html").write_bytes(b"ok")

    errors: list[BaseException] = []
    async with DiskCache(cache_root) as cache, cache.entry(src.hex, src.fill) as entry:

        async def get_ui() -> None:
            try:
                await entry.ensure_subtree("ui", fill_ui)
            except RuntimeError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(get_ui)
        assert len(errors) == 5
        assert all(err is boom for err in errors)
        assert not entry.has_subtree("ui")
        assert not (entry.path / "ui").exists()
        await entry.ensure_subtree("ui", fill_ui)
        assert await entry.open_verified("ui/index.html") == b"ok"
        assert not entry.has("ui/half.html")
    assert attempts == 2


async def test_two_caches_share_a_root(cache_root: Path, source: Callable[..., Source]) -> None:
    src = source("a")
    async with DiskCache(cache_root) as first:
        async with first.entry(src.hex, src.fill):
            pass
        scratch_of_first = set(os.listdir(cache_root / ".tmp"))
        # A second cache on the same root (another worker process) must not clean the live one's scratch...
        async with DiskCache(cache_root) as second:
            assert scratch_of_first <= set(os.listdir(cache_root / ".tmp"))
            # ...and finds the entry the first one published without filling.
            assert await second.read_verified(src.hex, "entry.wasm", src.fill) == src.files["entry.wasm"]
            assert second.statistics().fills == 0
    assert src.fills == 1
    assert os.listdir(cache_root / ".tmp") == []


async def test_closed_cache_refuses_work(cache_root: Path, source: Callable[..., Source]) -> None:
    src = source("a")
    cache = await DiskCache(cache_root).open()
    async with cache.entry(src.hex, src.fill) as entry:
        pass
    with pytest.raises(CacheError, match="after its block ended"):
        await entry.verify("entry.wasm")
    await cache.aclose()
    with pytest.raises(CacheClosed):
        async with cache.entry(src.hex, src.fill):
            pass
    with pytest.raises(CacheClosed):
        await cache.open()


async def test_opens_lazily(cache_root: Path, source: Callable[..., Source]) -> None:
    src = source("a")
    cache = DiskCache(cache_root)
    assert not await trio.Path(cache_root).exists()
    try:
        assert await cache.read_verified(src.hex, "entry.wasm", src.fill) == src.files["entry.wasm"]
    finally:
        await cache.aclose()
