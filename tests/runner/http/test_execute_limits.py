"""/v1/execute under hostile input: explicit size and depth limits, structured errors, memory-aware refusals."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

import trio

from runner_trio import Settings
from tests.runner.http.conftest import RunnerHandle, Shared, decode_body, start_runner

HEADERS = {"x-alga-tenant": "tenant-a", "x-alga-extension": "ext-1", "content-type": "application/json"}


async def test_json_nested_100000_deep_is_a_structured_400(runner: RunnerHandle) -> None:
    for doc in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        resp = await runner.client.post("/v1/execute", content=doc, headers=HEADERS)
        assert resp.status_code == 400
        assert resp.headers["content-type"].startswith("application/json")
        body = resp.json()
        assert body["error"] == "invalid_request"
        assert body["field"] == "$"
        assert "1024" in body["message"]
        assert "Traceback" not in resp.text
        assert "RecursionError" not in resp.text


async def test_bytes_that_are_not_utf8_json_are_a_structured_400(runner: RunnerHandle) -> None:
    for doc in (b"\xff\xfe{}", b'{"context": "\xed\xa0\x80"}', b"", b"{" * 5, b"1e999999", b"[18446744073709551616]"):
        resp = await runner.client.post("/v1/execute", content=doc, headers=HEADERS)
        assert resp.status_code == 400, doc
        assert resp.json()["error"] == "invalid_request"


async def test_a_body_that_overflows_the_guest_memory_names_limits_memory_mb(observing: RunnerHandle) -> None:
    runner = observing
    grow = await runner.publish_wat("grow")  # grows until refused, with any body whose first word is 0
    result = await runner.execute(grow, method="POST", body=bytes(100 * 1024), limits={"memory_mb": 16})
    assert result["status"] == 413
    assert result["error"].startswith("body_too_large_for_memory: ")
    assert "limits.memory_mb is 16" in result["error"]
    assert "102400 bytes" in result["error"]
    # Without a body worth naming it stays what it is: the guest hit its cap.
    result = await runner.execute(grow, limits={"memory_mb": 16})
    assert result["error"] == "execute_failed: memory_limit"
    ok = await runner.execute(grow, body=struct.pack("<I", 2), limits={"memory_mb": 16})
    assert ok["status"] == 200


async def test_a_1_5_mb_body_to_the_js_echo_guest_is_a_clear_413(observing: RunnerHandle) -> None:
    runner = observing
    digest = await runner.publish_sample("js-kitchen-sink")
    body = b"a" * 1_500_000
    result: dict[str, Any] = await runner.execute(digest, "/echo", method="POST", body=body,
                                                  http_headers={"content-type": "application/octet-stream"},
                                                  limits={"memory_mb": 128})
    assert result["status"] == 413, result
    assert result["error"].startswith("body_too_large_for_memory: ")
    assert "limits.memory_mb is 128" in result["error"]
    bigger = await runner.execute(digest, "/echo", method="POST", body=body,
                                  http_headers={"content-type": "application/octet-stream"},
                                  limits={"memory_mb": 512})
    assert bigger["status"] == 200  # the same body fits once the caller raises limits.memory_mb
    assert json.loads(decode_body(bigger))


async def test_the_memory_budget_holds_a_guest_back_then_refuses_it_as_overloaded(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared
) -> None:
    handle = await start_runner(
        nursery,
        runner_settings(max_concurrency=4, max_memory_mb=64, default_memory_mb=32, memory_budget_mb=96,
                        queue_timeout_ms=300),
        shared,
    )
    try:
        spin = await handle.publish_wat("spin")
        echo = await handle.publish_wat("echo")
        assert (await handle.execute(echo, body=b"warm"))["status"] == 200
        results: dict[str, dict[str, Any]] = {}

        async def call(name: str, digest: str, limits: dict[str, int]) -> None:
            results[name] = await handle.execute(digest, body=b"x", limits=limits)

        async with trio.open_nursery() as inner:
            inner.start_soon(call, "spin", spin, {"timeout_ms": 1500, "memory_mb": 64})
            await trio.sleep(0.2)  # the spinning guest holds 64 of the 96 MB
            # 32 MB fits beside it and runs at once; 64 MB more would exceed the budget: it waits in the
            # queue and, the spinning guest outlasting the queue timeout, is refused as overloaded. One after
            # the other: sent together, the second could reach the runner first, and one tenant's waiters are
            # served in arrival order (the 32 MB call would queue behind the 64 MB one).
            await call("fits", echo, {"memory_mb": 32})
            inner.start_soon(call, "exceeds", echo, {"memory_mb": 64})
        assert results["spin"]["error"] == "execute_failed: timeout"
        assert results["fits"]["status"] == 200
        assert results["exceeds"]["status"] == 429
        assert results["exceeds"]["error"].startswith("overloaded: ")
        assert "memory budget" in results["exceeds"]["error"]
        # Once the budget is free again the same request runs.
        assert (await handle.execute(echo, body=b"x", limits={"memory_mb": 64}))["status"] == 200
    finally:
        await handle.client.aclose()
        handle.shutdown.set()
