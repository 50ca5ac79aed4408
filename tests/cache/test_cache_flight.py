"""Single-flight fills and creations, and the in-memory CompiledCache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from cache import CompiledCache, DiskCache, SingleFlight
from tests.cache.cache_testkit import Source


async def test_fifty_concurrent_misses_make_one_fill(cache_root: Path, source: Callable[..., Source]) -> None:
    src = source("a", size=1000)
    read: list[bytes] = []
    async with DiskCache(cache_root) as cache:

        async def request() -> None:
            async with cache.entry(src.hex, src.fill) as entry:
                read.append(await entry.open_verified("entry.wasm"))

        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(request)
        stats = cache.statistics()
    assert src.fills == 1
    assert read == [src.files["entry.wasm"]] * 50
    assert (stats.misses, stats.hits, stats.fills, stats.pinned) == (50, 0, 1, 0)


async def test_waiters_keep_an_entry_that_is_too_big_to_stay(cache_root: Path, source: Callable[..., Source]) -> None:
    # With a bound of 0 every entry is evicted as soon as it is unpinned; waiters are pinned before they wake,
    # so none of them sees it vanish or triggers a second fill.
    src = source("a")
    ok = 0
    async with DiskCache(cache_root, max_bytes=0) as cache:

        async def request() -> None:
            nonlocal ok
            async with cache.entry(src.hex, src.fill) as entry:
                await entry.verify("entry.wasm")
                ok += 1

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(request)
        assert not cache.contains(src.hex)
    assert (ok, src.fills) == (20, 1)


async def test_fill_error_reaches_all_waiters_then_a_later_call_retries(
    cache_root: Path, source: Callable[..., Source]
) -> None:
    src = source("a")
    src.error = ConnectionError("bundle store unreachable")
    errors: list[BaseException] = []
    async with DiskCache(cache_root) as cache:

        async def request() -> None:
            try:
                async with cache.entry(src.hex, src.fill):
                    pass
            except ConnectionError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(request)
        assert len(errors) == 10
        assert all(err is src.error for err in errors)
        assert src.fills == 1

        src.error = None
        async with cache.entry(src.hex, src.fill) as entry:
            assert await entry.open_verified("entry.wasm") == src.files["entry.wasm"]
    assert src.fills == 2


async def test_a_cancelled_leader_hands_the_fill_to_a_waiter(
    cache_root: Path, source: Callable[..., Source]
) -> None:
    src = source("a")
    src.release = trio.Event()
    started = trio.Event()
    results: list[bytes] = []

    async def fill(dest: Path) -> None:
        started.set()
        await src.fill(dest)

    async with DiskCache(cache_root) as cache:

        async def leader(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
            with trio.CancelScope() as scope:
                task_status.started(scope)
                async with cache.entry(src.hex, fill):
                    raise AssertionError("the leader was cancelled")

        async def waiter() -> None:
            async with cache.entry(src.hex, fill) as entry:
                results.append(await entry.open_verified("entry.wasm"))

        async with trio.open_nursery() as nursery:
            scope = await nursery.start(leader)
            with trio.fail_after(10):
                await started.wait()
            for _ in range(3):
                nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            assert src.fills == 1
            scope.cancel()  # e.g. the client that caused the fetch disconnected
            await trio.testing.wait_all_tasks_blocked()
            src.release.set()
        assert results == [src.files["entry.wasm"]] * 3
        assert src.fills == 2
        assert cache.statistics().pinned == 0


async def test_different_hashes_fill_in_parallel(cache_root: Path, source: Callable[..., Source]) -> None:
    a, b = source("a"), source("b")
    a.release, b.release = trio.Event(), trio.Event()
    async with DiskCache(cache_root) as cache:

        async def fill_a(dest: Path) -> None:
            b.release.set()  # b can only finish because a runs at the same time
            await a.fill(dest)

        async def fill_b(dest: Path) -> None:
            a.release.set()
            await b.fill(dest)

        async def get(src: Source, fill: Callable[[Path], object]) -> None:
            async with cache.entry(src.hex, fill):  # type: ignore[arg-type]
                pass

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(get, a, fill_a)
                nursery.start_soon(get, b, fill_b)
        assert cache.statistics().fills == 2


async def test_compiled_cache_bounds_by_count_and_bytes() -> None:
    cache: CompiledCache[str, str] = CompiledCache(max_entries=3, max_bytes=100)
    for key in "abc":
        cache.put(key, key.upper(), 10)
    assert cache.get("a") == "A"  # a becomes most recently used
    cache.put("d", "D", 10)
    assert list(cache) == ["c", "a", "d"]
    cache.put("e", "E", 85)  # bytes: 105 -> evict c, a
    assert list(cache) == ["d", "e"]
    cache.put("huge", "H", 101)  # bigger than the bound alone: not kept
    assert "huge" not in cache
    stats = cache.statistics()
    assert (stats.entries, stats.bytes, stats.evictions) == (2, 95, 3)


async def test_compiled_cache_single_flight_and_errors() -> None:
    cache: CompiledCache[str, object] = CompiledCache()
    creates = 0
    release = trio.Event()
    boom = ValueError("compile failed")

    async def create() -> tuple[object, int]:
        nonlocal creates
        creates += 1
        await release.wait()
        if creates == 1:
            raise boom
        return object(), 10

    outcomes: list[object] = []

    async def get() -> None:
        try:
            outcomes.append(await cache.get_or_create("k", create))
        except ValueError as exc:
            outcomes.append(exc)

    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(get)
        await trio.testing.wait_all_tasks_blocked()
        release.set()
    assert creates == 1
    assert outcomes == [boom] * 50
    assert "k" not in cache

    outcomes.clear()
    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(get)
    assert creates == 2
    assert len({id(o) for o in outcomes}) == 1
    assert await cache.get_or_create("k", create) is outcomes[0]
    stats = cache.statistics()
    assert (stats.creates, stats.hits, stats.misses) == (2, 1, 100)


@pytest.mark.parametrize("bad", [{"max_entries": -1}, {"max_bytes": -1}])
async def test_compiled_cache_rejects_negative_bounds(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        CompiledCache(**bad)


async def _cancel_two_of_four_waiters() -> tuple[list[str], list[str]]:
    held: list[str] = []
    flight: SingleFlight[str, str] = SingleFlight(share=held.append, unshare=held.remove)
    release = trio.Event()
    taken: list[str] = []

    async def work() -> str:
        await release.wait()
        return "value"

    async def leader() -> None:
        await flight.run("k", work)

    async def waiter(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            value, led = await flight.run("k", work)
            assert not led
            taken.append(value)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(leader)
        await trio.testing.wait_all_tasks_blocked()
        scopes = [await nursery.start(waiter) for _ in range(4)]
        await trio.testing.wait_all_tasks_blocked()
        # Cancelled in the same tick as the release: trio may run the leader or these waiters first.
        scopes[0].cancel()
        scopes[1].cancel()
        release.set()
    return held, taken


async def test_single_flight_gives_back_shares_of_cancelled_waiters() -> None:
    # Whatever order trio runs the leader and a just-cancelled waiter in, every share handed to a waiter that
    # did not take the value is given back: pins can never leak.
    for _ in range(50):
        held, taken = await _cancel_two_of_four_waiters()
        assert len(held) == len(taken) == 2


async def test_compiled_cache_hit_counts_only_what_it_finds() -> None:
    # The runner's hot path looks a component up without a coroutine: a hit is counted as get_or_create's would
    # be, a miss is not (the caller then goes to get_or_create, which counts it).
    cache: CompiledCache[str, str] = CompiledCache(max_entries=2, max_bytes=100)
    assert cache.hit("a") is None
    cache.put("a", "A", 10)
    cache.put("b", "B", 10)
    assert cache.hit("a") == "A"
    assert list(cache) == ["b", "a"]  # a became most recently used
    stats = cache.statistics()
    assert (stats.hits, stats.misses) == (1, 0)
