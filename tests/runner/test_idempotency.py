"""The idempotency cache: run once per (tenant, extension, key), share with concurrent duplicates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from runner_trio.idempotency import IdempotencyCache, KeyReused


async def test_concurrent_duplicates_run_once() -> None:
    cache: IdempotencyCache[str] = IdempotencyCache()
    runs = 0

    async def execute() -> tuple[str, bool]:
        nonlocal runs
        runs += 1
        await trio.sleep(0.05)
        return f"result-{runs}", True

    results: list[str] = []

    async def call() -> None:
        results.append(await cache.run(("t", "e"), "k1", "fp", execute))

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(call)
    assert runs == 1
    assert results == ["result-1"] * 10
    assert cache.replays == 9


async def test_scoped_by_tenant_and_extension() -> None:
    cache: IdempotencyCache[str] = IdempotencyCache()

    async def make(value: str) -> tuple[str, bool]:
        return value, True

    assert await cache.run(("t1", "e"), "k", "fp", lambda: make("one")) == "one"
    assert await cache.run(("t2", "e"), "k", "fp", lambda: make("two")) == "two"
    assert await cache.run(("t1", "e2"), "k", "fp", lambda: make("three")) == "three"
    assert await cache.run(("t1", "e"), "k", "fp", lambda: make("four")) == "one"


async def test_key_reuse_with_other_request_is_refused() -> None:
    cache: IdempotencyCache[str] = IdempotencyCache()

    async def make() -> tuple[str, bool]:
        return "x", True

    await cache.run(("t", "e"), "k", "fp1", make)
    with pytest.raises(KeyReused):
        await cache.run(("t", "e"), "k", "fp2", make)


async def test_ttl_and_bound(autojump_clock: trio.testing.MockClock) -> None:
    cache: IdempotencyCache[int] = IdempotencyCache(ttl=10.0, max_entries=3)
    counter = 0

    async def make() -> tuple[int, bool]:
        nonlocal counter
        counter += 1
        return counter, True

    assert await cache.run(("t", "e"), "a", "fp", make) == 1
    assert await cache.run(("t", "e"), "a", "fp", make) == 1
    await trio.sleep(11)
    assert await cache.run(("t", "e"), "a", "fp", make) == 2, "expired entries run again"
    for key in "bcde":
        await cache.run(("t", "e"), key, "fp", make)
    assert len(cache) == 3


async def test_unremembered_and_failed_results_are_retried() -> None:
    cache: IdempotencyCache[str] = IdempotencyCache()
    attempts = 0

    async def flaky() -> tuple[str, bool]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("boom")
        if attempts == 2:
            return "overloaded", False
        return "done", True

    with pytest.raises(RuntimeError):
        await cache.run(("t", "e"), "k", "fp", flaky)
    assert await cache.run(("t", "e"), "k", "fp", flaky) == "overloaded"
    assert await cache.run(("t", "e"), "k", "fp", flaky) == "done"
    assert await cache.run(("t", "e"), "k", "fp", flaky) == "done"
    assert attempts == 3


async def test_runs_in_flight_are_never_evicted() -> None:
    cache: IdempotencyCache[str] = IdempotencyCache(max_entries=1)
    release = trio.Event()
    runs: list[str] = []

    def slow(value: str) -> Callable[[], Awaitable[tuple[str, bool]]]:
        async def execute() -> tuple[str, bool]:
            runs.append(value)
            await release.wait()
            return value, True

        return execute

    results: list[str] = []

    async def call(key: str) -> None:
        results.append(await cache.run(("t", "e"), key, "fp", slow(key)))

    async with trio.open_nursery() as nursery:
        for key in ("a", "b", "a", "b"):
            nursery.start_soon(call, key)
        await trio.testing.wait_all_tasks_blocked()
        assert len(cache) == 2  # both running, over the bound of finished results
        release.set()
    assert sorted(runs) == ["a", "b"]
    assert sorted(results) == ["a", "a", "b", "b"]
    assert len(cache) == 1  # one finished result kept


async def test_zero_entries_shares_only_with_concurrent_duplicates() -> None:
    cache: IdempotencyCache[int] = IdempotencyCache(max_entries=0)
    counter = 0

    async def make() -> tuple[int, bool]:
        nonlocal counter
        counter += 1
        await trio.sleep(0.01)
        return counter, True

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(cache.run, ("t", "e"), "k", "fp", make)
    assert counter == 1
    assert await cache.run(("t", "e"), "k", "fp", make) == 2
    assert len(cache) == 0
