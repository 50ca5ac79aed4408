"""The publisher against a real redis-server: layout, truncation, trimming, threads, and Redis being optional."""

from __future__ import annotations

import threading

import redis
import trio

from runner_trio.debug_events import DebugEvent, DebugEventPublisher
from tests._redis import RedisServer

from ._helpers import HASH, Counter, context, entries, key_of, running, xlen

ORDER_FULL = [
    "ts", "level", "stream", "tenant", "extension", "install", "request", "version", "content_hash", "message",
    "truncated",
]  # fmt: skip


async def test_every_event_kind_arrives_with_its_context_in_field_order(redis_server: RedisServer) -> None:
    published = Counter()
    dropped = Counter()
    publisher = DebugEventPublisher(redis_server.url, on_published=published, on_dropped=dropped)
    ctx = context()
    kinds = [
        ("info", "log", "guest logging.log-info"),
        ("warn", "log", "guest logging.log-warn"),
        ("error", "log", "guest logging.log-error"),
        ("info", "stdout", "a line on stdout"),
        ("error", "stderr", "a line on stderr"),
        ("error", "log", "execute_failed: timeout after 100 ms"),  # a runner-side failure
    ]
    async with running(publisher):
        sink = publisher.for_invocation(ctx)
        for level, stream, message in kinds:
            sink.emit(level, stream, message)  # type: ignore[arg-type]
        publisher.publish(DebugEvent(level="debug", stream="log", tenant=ctx.tenant_id, extension="Other", message="m"))
        await publisher.flush()

    got = await entries(redis_server.url, key_of(ctx))
    assert key_of(ctx) == f"ext-debug:{ctx.tenant_id.lower()}:com.acme.debug"  # ids lower-cased in the key only
    assert [(f["level"], f["stream"], f["message"]) for _, f in got] == kinds
    for _, fields in got:
        assert list(fields) == ORDER_FULL
        assert fields["tenant"] == ctx.tenant_id
        assert fields["extension"] == "Com.Acme.Debug"
        assert (fields["install"], fields["request"], fields["version"]) == ("inst-1", "Req-1", "ver-1")
        assert fields["content_hash"] == "sha256:" + HASH
        assert fields["truncated"] == "0"
        assert fields["ts"].isdigit()
        assert len(fields["ts"]) == 13  # Unix milliseconds
    [(_, bare)] = await entries(redis_server.url, f"ext-debug:{ctx.tenant_id.lower()}:other")
    assert list(bare) == ["ts", "level", "stream", "tenant", "extension", "message", "truncated"]
    assert published.total == 7
    assert dropped.total == 0
    stats = publisher.statistics()
    assert (stats.published, stats.dropped, stats.queued) == (7, 0, 0)


async def test_the_command_is_the_contracts_word_for_word(redis_server: RedisServer) -> None:
    ready = threading.Event()

    def watch() -> str:
        client = redis.Redis.from_url(redis_server.url, socket_timeout=10)
        try:
            with client.monitor() as monitor:  # type: ignore[no-untyped-call]
                ready.set()
                while True:
                    command = monitor.next_command()["command"]
                    if command.startswith("XADD"):
                        return str(command)
        finally:
            client.close()

    publisher = DebugEventPublisher(redis_server.url, maxlen=123)
    ctx = context(request_id="")
    async with running(publisher), trio.open_nursery() as nursery:
        seen: list[str] = []

        async def capture() -> None:
            seen.append(await trio.to_thread.run_sync(watch))

        nursery.start_soon(capture)
        await trio.to_thread.run_sync(ready.wait)
        publisher.for_invocation(ctx).emit("info", "stdout", "hello")
        await publisher.flush()
    words = seen[0].split(" ")
    assert words[7].isdigit()
    del words[7]  # the timestamp
    assert words == [
        "XADD", key_of(ctx), "MAXLEN", "~", "123", "*", "ts", "level", "info", "stream", "stdout",
        "tenant", ctx.tenant_id, "extension", "Com.Acme.Debug", "install", "inst-1", "version", "ver-1",
        "content_hash", "sha256:" + HASH, "message", "hello", "truncated", "0",
    ]  # fmt: skip  (no "request": the context had none)


async def test_long_messages_are_cut_on_a_character_boundary(redis_server: RedisServer) -> None:
    publisher = DebugEventPublisher(redis_server.url, max_event_bytes=64)
    ctx = context()
    straddling = "x" * 63 + "é" + "tail"  # é takes bytes 64-65: cutting at 64 would split it
    exact = "y" * 62 + "é"  # exactly 64 bytes: kept whole
    emoji = "😀" * 20  # 80 bytes of 4-byte characters
    async with running(publisher):
        sink = publisher.for_invocation(ctx)
        sink.emit("info", "stdout", straddling)
        sink.emit("info", "stdout", exact)
        publisher.publish(
            DebugEvent(level="warn", stream="stderr", tenant=ctx.tenant_id, extension=ctx.extension_id, message=emoji)
        )
        await publisher.flush()
    got = [fields for _, fields in await entries(redis_server.url, key_of(ctx))]
    assert (got[0]["message"], got[0]["truncated"]) == ("x" * 63, "1")
    assert (got[1]["message"], got[1]["truncated"]) == (exact, "0")
    assert (got[2]["message"], got[2]["truncated"]) == ("😀" * 16, "1")
    assert all(len(f["message"].encode("utf-8")) <= 64 for f in got)


async def test_maxlen_trims_the_stream_approximately(redis_server: RedisServer) -> None:
    publisher = DebugEventPublisher(redis_server.url, maxlen=100, per_invocation_limit=5000)
    ctx = context()
    async with running(publisher):
        sink = publisher.for_invocation(ctx)
        for i in range(1000):
            sink.emit("debug", "stdout", f"line {i}")
        await publisher.flush()
    length = await xlen(redis_server.url, key_of(ctx))
    # "~" trims whole radix-tree nodes (100 entries each by default): never below maxlen, never far above it.
    assert 100 <= length < 200
    got = await entries(redis_server.url, key_of(ctx))
    assert got[-1][1]["message"] == "line 999"  # the newest survive
    assert publisher.statistics().published == 1000


async def test_publishing_from_worker_threads_and_tasks_loses_nothing(redis_server: RedisServer) -> None:
    publisher = DebugEventPublisher(redis_server.url, maxlen=100_000, per_invocation_limit=100_000)
    ctx = context()
    threads, per_thread = 8, 500
    async with running(publisher):
        sink = publisher.for_invocation(ctx)

        def guest(n: int) -> None:  # what a host function does from the worker thread running the guest
            for i in range(per_thread):
                sink.emit("info", "stdout", f"thread {n} line {i}")

        async with trio.open_nursery() as nursery:
            for n in range(threads):
                nursery.start_soon(trio.to_thread.run_sync, guest, n)
            for i in range(per_thread):
                sink.emit("info", "log", f"task line {i}")
                if i % 50 == 0:
                    await trio.lowlevel.checkpoint()
        await publisher.flush()
    assert await xlen(redis_server.url, key_of(ctx)) == (threads + 1) * per_thread
    assert sink.emitted == (threads + 1) * per_thread
    assert publisher.statistics().dropped == 0


async def test_without_a_redis_url_everything_is_a_counted_nothing() -> None:
    published = Counter()
    dropped = Counter()
    publisher = DebugEventPublisher(None, on_published=published, on_dropped=dropped)
    assert not publisher.enabled
    sink = publisher.for_invocation(context())
    assert not sink.enabled
    for i in range(5000):  # past the per-invocation budget too
        sink.emit("info", "stdout", f"line {i}")
        publisher.publish(DebugEvent(level="info", stream="log", tenant="t", extension="e", message="m"))
    async with running(publisher):
        await publisher.flush()
    stats = publisher.statistics()
    assert (stats.enabled, stats.published, stats.dropped, stats.queued) == (False, 0, 0, 0)
    assert (published.calls, dropped.calls) == (0, 0)
    assert (sink.emitted, sink.dropped) == (0, 0)
