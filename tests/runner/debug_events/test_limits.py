"""Bounds: the queue, the per-invocation budget, and Redis going away and coming back."""

from __future__ import annotations

import time

import trio

from runner_trio.debug_events import BUDGET_EXHAUSTED_MESSAGE, DebugEvent, DebugEventPublisher
from tests._redis import RedisServer, running_redis

from ._helpers import Counter, context, entries, key_of, running, xlen


def _event(tenant: str, message: str = "m") -> DebugEvent:
    return DebugEvent(level="info", stream="stdout", tenant=tenant, extension="com.acme.debug", message=message)


async def test_a_flooding_invocation_is_held_to_its_budget(redis_server: RedisServer) -> None:
    dropped = Counter()
    publisher = DebugEventPublisher(redis_server.url, on_dropped=dropped)  # default budget: 1000 events
    ctx = context()
    async with running(publisher):
        sink = publisher.for_invocation(ctx)
        for i in range(100_000):
            sink.emit("info", "stdout", f"line {i}")
        await publisher.flush()
    assert (sink.emitted, sink.dropped) == (1000, 99_000)
    stats = publisher.statistics()
    assert (stats.published, stats.dropped_rate_limited, stats.dropped) == (1001, 99_000, 99_000)
    assert dropped.total == 99_000
    got = await entries(redis_server.url, key_of(ctx))
    assert len(got) == 1001
    assert got[999][1]["message"] == "line 999"
    notice = got[-1][1]
    assert (notice["level"], notice["stream"], notice["message"]) == ("warn", "log", BUDGET_EXHAUSTED_MESSAGE)
    assert notice["request"] == "Req-1"  # the notice carries the invocation's context like any other event


async def test_the_byte_budget_counts_message_bytes(redis_server: RedisServer) -> None:
    publisher = DebugEventPublisher(redis_server.url, per_invocation_bytes=1000)
    ctx = context()
    async with running(publisher):
        sink = publisher.for_invocation(ctx)
        for _ in range(50):
            sink.emit("info", "stdout", "é" * 50)  # 100 bytes each
        await publisher.flush()
    assert (sink.emitted, sink.dropped) == (10, 40)
    got = await entries(redis_server.url, key_of(ctx))
    assert [f["message"] for _, f in got] == ["é" * 50] * 10 + [BUDGET_EXHAUSTED_MESSAGE]


async def test_budgets_are_per_invocation(redis_server: RedisServer) -> None:
    publisher = DebugEventPublisher(redis_server.url, per_invocation_limit=3)
    ctx = context()
    async with running(publisher):
        for _ in range(2):
            sink = publisher.for_invocation(ctx)
            for i in range(5):
                sink.emit("info", "stdout", str(i))
        await publisher.flush()
    got = [f["message"] for _, f in await entries(redis_server.url, key_of(ctx))]
    assert got == ["0", "1", "2", BUDGET_EXHAUSTED_MESSAGE] * 2


async def test_the_queue_is_bounded_while_nothing_drains_it(redis_server: RedisServer) -> None:
    dropped = Counter()
    publisher = DebugEventPublisher(redis_server.url, queue_size=100, on_dropped=dropped)
    tenant = context().tenant_id
    for i in range(100_000):
        publisher.publish(_event(tenant, str(i)))
    stats = publisher.statistics()
    assert (stats.queued, stats.dropped_queue_full) == (100, 99_900)
    assert dropped.total == 99_900
    async with running(publisher):
        await publisher.flush()
    got = await entries(redis_server.url, f"ext-debug:{tenant.lower()}:com.acme.debug")
    assert [f["message"] for _, f in got] == [str(i) for i in range(100)]  # the oldest kept, the overflow dropped


async def test_redis_outage_drops_and_counts_then_recovers() -> None:
    dropped = Counter()
    with running_redis() as server:
        publisher = DebugEventPublisher(
            server.url,
            queue_size=1000,
            batch_size=100,
            socket_timeout=1.0,
            reconnect_initial_delay=0.01,
            reconnect_max_delay=0.1,
            on_dropped=dropped,
        )
        tenant = context().tenant_id
        key = f"ext-debug:{tenant.lower()}:com.acme.debug"
        async with running(publisher):
            for i in range(10):
                publisher.publish(_event(tenant, f"before {i}"))
            await publisher.flush()
            assert await xlen(server.url, key) == 10

            server.stop()
            started = time.monotonic()
            for i in range(20_000):
                publisher.publish(_event(tenant, f"during {i}"))
                if i % 1000 == 0:
                    await trio.lowlevel.checkpoint()  # let the writer try, and fail, meanwhile
            # Generous bound: 20k appends take milliseconds; a publish that waited on Redis would take seconds.
            assert time.monotonic() - started < 5.0
            with trio.fail_after(10):
                while publisher.statistics().connected:  # noqa: ASYNC110 - polling what an operator sees
                    await trio.sleep(0.01)
            stats = publisher.statistics()
            assert stats.queued <= 1000
            assert stats.dropped_redis >= 1  # the batch in flight when Redis went away
            assert stats.queued + stats.dropped_redis + stats.dropped_queue_full == 20_000
            assert dropped.total == stats.dropped

            server.start()  # same port, empty (nothing is persisted)
            with trio.fail_after(10):
                await publisher.flush()  # the queued backlog goes out once Redis answers again
            for i in range(5):
                publisher.publish(_event(tenant, f"after {i}"))
            with trio.fail_after(10):
                await publisher.flush()
            final = publisher.statistics()
            got = [f["message"] for _, f in await entries(server.url, key)]
            assert final.connected
            assert got[-5:] == [f"after {i}" for i in range(5)]
            assert len(got) == stats.queued + 5
            assert final.published == 10 + stats.queued + 5
