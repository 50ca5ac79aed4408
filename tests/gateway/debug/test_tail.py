"""The tail against a real redis-server: replay then live, filters, a slow consumer, outages, prompt stop."""

from __future__ import annotations

import time

import redis
import trio

from gateway_quart.debug import TailFilters, replay_and_tail
from runner_trio._wire import RequestContext
from runner_trio.debug_events import DebugEventPublisher
from tests._redis import RedisServer, running_redis
from tests._timing import DEADLINE_SLACK_S

from ._helpers import add, key, new_tenant, tail_clients, take

EVENT_KEYS = {"id", "ts", "level", "stream", "tenantId", "extensionId", "message", "truncated"}


async def test_replays_the_last_n_then_follows_live(redis_server: RedisServer) -> None:
    tenant = new_tenant()
    ids = [await add(redis_server.url, key(tenant), tenant=tenant, message=f"old {i}") for i in range(5)]
    async with replay_and_tail(redis_server.url, key(tenant), last_n=3) as events:
        replayed = await take(events, 3)
        assert [e["message"] for e in replayed] == ["old 2", "old 3", "old 4"]
        assert [e["id"] for e in replayed] == ids[2:]
        assert set(replayed[0]) == EVENT_KEYS
        assert replayed[0]["tenantId"] == tenant
        assert replayed[0]["truncated"] is False
        assert replayed[0]["ts"].isdigit()  # the string Redis holds, as the reference sends it
        for i in range(2):
            await add(redis_server.url, key(tenant), tenant=tenant, message=f"new {i}")
        live = await take(events, 2)
        assert [e["message"] for e in live] == ["new 0", "new 1"]
        assert events.last_id == live[-1]["id"]


async def test_an_empty_stream_is_followed_from_its_first_entry(redis_server: RedisServer) -> None:
    tenant = new_tenant()
    async with replay_and_tail(redis_server.url, key(tenant), block_ms=100) as events:
        await trio.sleep(0.2)  # the reader is blocked in XREAD on a key that does not exist yet
        await add(redis_server.url, key(tenant), message="first")
        [event] = await take(events, 1)
        assert event["message"] == "first"


async def test_runner_events_arrive_in_the_references_json_shape(redis_server: RedisServer) -> None:
    tenant = new_tenant()
    ctx = RequestContext(
        tenant_id=tenant,
        extension_id="com.acme.debug",
        content_hash="cd" * 32,
        request_id="req-9",
        install_id="inst-9",
        version_id="ver-9",
    )
    publisher = DebugEventPublisher(redis_server.url, max_event_bytes=16)
    async with trio.open_nursery() as nursery:
        await nursery.start(publisher.run)
        publisher.for_invocation(ctx).emit("warn", "stderr", "a message longer than sixteen bytes")
        await publisher.flush()
        nursery.cancel_scope.cancel()
    async with replay_and_tail(redis_server.url, key(tenant)) as events:
        [event] = await take(events, 1)
    assert event.pop("id")
    assert event.pop("ts").isdigit()
    assert event == {
        "level": "warn",
        "stream": "stderr",
        "tenantId": tenant,
        "extensionId": "com.acme.debug",
        "installId": "inst-9",
        "requestId": "req-9",
        "versionId": "ver-9",
        "contentHash": "sha256:" + "cd" * 32,
        "message": "a message longer",
        "truncated": True,
    }


async def test_filters_apply_to_replay_and_live(redis_server: RedisServer) -> None:
    tenant = new_tenant()
    k = key(tenant)
    rows = [
        {"level": "error", "stream": "stderr", "request": "REQ-1", "install": "i1", "message": "match 1"},
        {"level": "info", "stream": "stderr", "request": "req-1", "install": "i1", "message": "level too low"},
        {"level": "warn", "stream": "stdout", "request": "req-1", "install": "i1", "message": "wrong stream"},
        {"level": "warn", "stream": "stderr", "request": "req-2", "install": "i1", "message": "wrong request"},
        {"level": "warn", "stream": "stderr", "install": "i1", "message": "no request"},
        {"level": "warn", "stream": "stderr", "request": "req-1", "install": "i2", "message": "wrong install"},
        {"level": "warn", "stream": "stderr", "request": "req-1", "install": "I1", "message": "match 2"},
    ]
    for row in rows:
        await add(redis_server.url, k, **row)
    filters = TailFilters.parse(request_id="Req-1", install_id="i1", level="warn", stream="stderr,log")
    async with replay_and_tail(redis_server.url, k, filters=filters) as events:
        assert [e["message"] for e in await take(events, 2)] == ["match 1", "match 2"]
        for row in rows:
            await add(redis_server.url, k, **row)
        assert [e["message"] for e in await take(events, 2)] == ["match 1", "match 2"]
        await add(redis_server.url, k, level="error", stream="log", request="req-1", install="i1", message="tail end")
        assert [e["message"] for e in await take(events, 1)] == ["tail end"]  # nothing else slipped through


async def test_filtered_replay_finds_the_last_n_matches_past_other_entries(redis_server: RedisServer) -> None:
    tenant = new_tenant()
    k = key(tenant)
    for i in range(3):
        await add(redis_server.url, k, request="wanted", message=f"wanted {i}")
    await _add_many(redis_server.url, k, 1200)  # more than two XREVRANGE pages of others after them
    filters = TailFilters.parse(request_id="wanted")
    async with replay_and_tail(redis_server.url, k, filters=filters, last_n=2, heartbeat=0.3) as events:
        got = await take(events, 2)
        assert [e["message"] for e in got] == ["wanted 1", "wanted 2"]
        [quiet] = await take(events, 1, skip_heartbeats=False)
        assert quiet["type"] == "heartbeat"


async def _add_many(url: str, k: str, count: int) -> None:
    def write() -> None:
        client = redis.Redis.from_url(url)
        try:
            pipe = client.pipeline(transaction=False)
            for i in range(count):
                pipe.xadd(k, {"ts": "1", "level": "info", "stream": "log", "request": "other", "message": f"o{i}"})
            pipe.execute()
        finally:
            client.close()

    await trio.to_thread.run_sync(write)


async def test_a_slow_consumer_gets_a_dropped_count_not_unbounded_memory(redis_server: RedisServer) -> None:
    tenant = new_tenant()
    k = key(tenant)
    async with replay_and_tail(redis_server.url, k, last_n=0, buffer_size=10, block_ms=100) as events:
        await trio.sleep(0.2)  # the reader follows; the consumer reads nothing meanwhile
        last = ""
        for i in range(100):
            last = await add(redis_server.url, k, message=f"event {i}")
        with trio.fail_after(5):
            while events.last_id != last:  # noqa: ASYNC110 - waiting for the reader to have seen everything
                await trio.sleep(0.01)
        assert events.dropped == 90
        got = await take(events, 11)
        assert [e["message"] for e in got[:10]] == [f"event {i}" for i in range(10)]
        assert got[10] == {"type": "dropped", "count": 90}
        await add(redis_server.url, k, message="after the gap")
        [after] = await take(events, 1)
        assert after["message"] == "after the gap"


async def test_resuming_after_an_id_skips_the_replay(redis_server: RedisServer) -> None:
    tenant = new_tenant()
    ids = [await add(redis_server.url, key(tenant), message=f"m{i}") for i in range(5)]
    async with replay_and_tail(redis_server.url, key(tenant), after_id=ids[2]) as events:
        assert [e["message"] for e in await take(events, 2)] == ["m3", "m4"]


async def test_closing_is_prompt_and_the_connection_is_released(redis_server: RedisServer) -> None:
    tenant = new_tenant()
    with trio.fail_after(10):
        while await tail_clients(redis_server.url):  # noqa: ASYNC110 - earlier tests' tails finishing
            await trio.sleep(0.05)
    started = time.monotonic()
    with trio.move_on_after(0.3):
        async with replay_and_tail(redis_server.url, key(tenant), block_ms=6000, heartbeat=60) as events:
            await take(events, 1, deadline=60)  # nothing comes: cancelled while the reader sits in XREAD BLOCK
    # Cancellation does not wait for the 6 s XREAD to return.
    assert time.monotonic() - started < 0.3 + DEADLINE_SLACK_S
    with trio.fail_after(20):
        while await tail_clients(redis_server.url):  # noqa: ASYNC110 - the abandoned XREAD returns, then closes
            await trio.sleep(0.05)


async def test_a_redis_outage_is_reported_and_the_tail_resumes() -> None:
    with running_redis() as server:
        tenant = new_tenant()
        async with replay_and_tail(server.url, key(tenant), block_ms=100, retry_initial_delay=0.02) as events:
            await add(server.url, key(tenant), message="before")
            assert [e["message"] for e in await take(events, 1)] == ["before"]
            server.stop()
            [notice] = await take(events, 1)
            assert notice == {"type": "error", "code": "redis_unavailable"}
            server.start()
            await add(server.url, key(tenant), message="after")
            assert [e["message"] for e in await take(events, 1)] == ["after"]


async def test_the_replay_waits_for_the_consumer_instead_of_dropping(redis_server: RedisServer) -> None:
    tenant = new_tenant()
    await _add_many(redis_server.url, key(tenant), 50)
    async with replay_and_tail(redis_server.url, key(tenant), last_n=50, buffer_size=5) as events:
        replayed = await take(events, 50)
    assert [e["message"] for e in replayed] == [f"o{i}" for i in range(50)]
    assert events.dropped == 0
