"""Several processes on one cache root (a runner's worker processes): one fill and one build per hash among
them all, and index.json rewrites that keep each other's changes.

Two `DiskCache` objects on one root in this process stand for two processes: the cache's file locks
(``flock`` on ``<root>/.locks/``) exclude each other per open file, exactly as between processes; the
system tests (tests/system/test_workers.py) check the same across real worker processes.
"""

from __future__ import annotations

from pathlib import Path

import trio
import wasmtime
from wasmtime.component import Component

from cache import DiskCache
from tests.cache.cache_testkit import Source, assert_consistent
from tests.cache.test_cache_artifacts import TARGET, Runner, component_bytes, engine, wasm_source

__all__ = ["component_bytes", "engine", "wasm_source"]  # fixtures


async def test_concurrent_misses_in_two_processes_fill_and_build_once(
    cache_root: Path, engine: wasmtime.Engine, wasm_source: Source
) -> None:
    async with DiskCache(cache_root) as first, DiskCache(cache_root) as second:
        runners = [Runner(first, engine, wasm_source), Runner(second, engine, wasm_source)]
        got: list[Component] = []

        async def request(runner: Runner) -> None:
            got.append(await runner.component())

        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(request, runners[i % 2])
        assert len(got) == 50
        assert wasm_source.fills == 1
        assert sum(r.built for r in runners) == 1
        stats = [r.artifacts.statistics() for r in runners]
        assert sum(s.fills for s in stats) == 1
        assert sum(s.builds for s in stats) == 1
        # The process that did not build loaded the artifact the other one stored.
        assert sum(s.precompiled_loads for s in stats) == 1
        for disk in (first, second):
            async with disk.lookup(wasm_source.hex) as entry:
                assert entry is not None
                assert entry.has(f"precompiled/{TARGET}.cwasm")
    assert_consistent(cache_root)


async def test_an_index_rewrite_keeps_what_another_process_added(cache_root: Path) -> None:
    src = Source({"entry.wasm": b"\0asm"}, tag="two-writers")
    async with (
        DiskCache(cache_root) as first,
        DiskCache(cache_root) as second,
        first.entry(src.hex, src.fill) as a,
        second.entry(src.hex, src.fill) as b,
    ):
        await a.add_file("precompiled/one.cwasm", b"one")
        # ``second`` loaded the entry before that file existed; its own write must not drop it.
        await b.add_file("precompiled/two.cwasm", b"two")
        assert b.has("precompiled/one.cwasm")
        await a.refresh()
        assert a.has("precompiled/two.cwasm")
    assert src.fills == 1
    entries = assert_consistent(cache_root)
    assert sorted(entries[src.hex]) == ["entry.wasm", "precompiled/one.cwasm", "precompiled/two.cwasm"]
