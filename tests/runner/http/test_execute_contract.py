"""``POST /v1/execute`` through HTTP against a real runner: the contract's shape and every error code."""

from __future__ import annotations

import struct

import httpx
import trio

from tests._timing import DEADLINE_SLACK_S
from tests.runner.http.conftest import RunnerHandle, decode_body

MISSING_HASH = "sha256:" + "ab" * 32


async def test_echo_round_trip_and_shape(runner: RunnerHandle) -> None:
    digest = await runner.publish_wat("echo")
    result = await runner.execute(digest, "/items/7", method="POST", body=b"hello \x00\xff",
                                  query={"q": "a b"}, http_headers={"X-Custom": "yes"})
    # "usage": what the guest used (contract.USAGE_FIELDS), an extension the reference's callers ignore.
    assert set(result) == {"status", "headers", "body_b64", "error", "usage"}
    assert set(result["usage"]) >= {"guest_cpu_ms", "memory_mb_ms", "egress_bytes", "storage_ops", "debug_events"}
    assert result["status"] == 200
    assert result["error"] is None
    assert decode_body(result) == b"hello \x00\xff"
    headers = result["headers"]
    assert headers["x-method"] == "POST"
    assert headers["x-url"] == "/items/7?q=a+b"
    assert headers["x-tenant"] == "tenant-a"
    assert headers["x-custom"] == "yes"
    assert headers["x-request-id"], "the runner gives every invocation a request id"


async def test_body_absent_vs_empty(runner: RunnerHandle) -> None:
    digest = await runner.publish_wat("echo")
    none = await runner.execute(digest, "/", body=None)
    empty = await runner.execute(digest, "/", body=b"")
    assert none["body_b64"] is None
    assert empty["body_b64"] == ""


async def test_one_mebibyte_body(runner: RunnerHandle) -> None:
    digest = await runner.publish_wat("echo")
    payload = bytes(range(256)) * 4096
    result = await runner.execute(digest, "/", method="PUT", body=payload)
    assert decode_body(result) == payload


async def test_missing_routing_headers(runner: RunnerHandle) -> None:
    response = await runner.client.post("/v1/execute", json={})
    assert response.status_code == 200
    assert response.json()["status"] == 400
    assert response.json()["error"].startswith("missing_routing_headers")


async def test_routing_headers_must_agree_with_context(runner: RunnerHandle) -> None:
    digest = await runner.publish_wat("echo")
    response = await runner.client.post(
        "/v1/execute",
        json={"context": {"tenant_id": "tenant-b", "extension_id": "ext-1", "content_hash": digest},
              "http": {"method": "GET", "path": "/"}},
        headers={"x-alga-tenant": "tenant-a", "x-alga-extension": "ext-1"},
    )
    assert response.json()["status"] == 400
    assert response.json()["error"].startswith("routing_mismatch")


async def test_malformed_json_names_the_field(runner: RunnerHandle) -> None:
    headers = {"x-alga-tenant": "t", "x-alga-extension": "e"}
    response = await runner.client.post("/v1/execute", content=b"{not json", headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    response = await runner.client.post(
        "/v1/execute", headers=headers,
        json={"context": {"tenant_id": "t", "extension_id": "e", "content_hash": "nope"}, "http": {"method": "GET"}},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "context.content_hash"
    response = await runner.client.post(
        "/v1/execute", headers=headers,
        json={"context": {"tenant_id": "t", "extension_id": "e", "content_hash": MISSING_HASH},
              "http": {"method": "GET", "headers": {"a": 1}}},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "http.headers.a"


async def test_unknown_capabilities(runner: RunnerHandle) -> None:
    digest = await runner.publish_wat("echo")
    result = await runner.execute(digest, providers=["cap:http.fetch", "cap:teleport", "cap:mind.read"])
    assert result["status"] == 400
    assert result["error"] == "unknown_capabilities: cap:mind.read, cap:teleport"


async def test_bundle_fetch_failed(runner: RunnerHandle) -> None:
    result = await runner.execute(MISSING_HASH)
    assert result["status"] == 502
    assert result["error"].startswith("bundle_fetch_failed: not_found")


async def test_service_token_required(runner: RunnerHandle) -> None:
    async with httpx.AsyncClient(base_url=runner.url) as anonymous:
        response = await anonymous.post("/v1/execute", json={})
        assert response.status_code == 401
        response = await anonymous.post("/v1/execute", json={}, headers={"authorization": "Bearer wrong"})
        assert response.status_code == 401
        assert (await anonymous.get("/healthz")).status_code == 200


async def test_trap_then_next_request_works(runner: RunnerHandle) -> None:
    trap = await runner.publish_wat("trap")
    echo = await runner.publish_wat("echo")
    result = await runner.execute(trap)
    assert result["status"] == 500
    assert result["error"] == "execute_failed: trap"
    again = await runner.execute(trap)
    assert again["error"] == "execute_failed: trap", "a trap poisons only its own Store"
    ok = await runner.execute(echo, body=b"fine")
    assert decode_body(ok) == b"fine"


async def test_spinning_guest_times_out_while_neighbour_is_unaffected(runner: RunnerHandle) -> None:
    spin = await runner.publish_wat("spin")
    echo = await runner.publish_wat("echo")
    await runner.execute(echo)  # warm both components so the measurement is the guest's alone
    await runner.execute(spin, limits={"timeout_ms": 50})
    outcome: dict[str, object] = {}

    async def slow() -> None:
        started = trio.current_time()
        outcome["spin"] = await runner.execute(spin, limits={"timeout_ms": 200})
        outcome["spin_seconds"] = trio.current_time() - started

    async def quick() -> None:
        await trio.sleep(0.05)
        outcome["echo"] = await runner.execute(echo, body=b"still here", extension="ext-2")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(slow)
        nursery.start_soon(quick)
    spin_result = outcome["spin"]
    assert isinstance(spin_result, dict)
    assert spin_result["status"] == 504
    assert spin_result["error"] == "execute_failed: timeout"
    assert isinstance(outcome["spin_seconds"], float)
    assert outcome["spin_seconds"] < 0.2 + DEADLINE_SLACK_S  # the spin guest never ends by itself
    echo_result = outcome["echo"]
    assert isinstance(echo_result, dict)
    assert decode_body(echo_result) == b"still here"


async def test_sleeping_guest_stops_at_its_deadline(runner: RunnerHandle) -> None:
    sleep = await runner.publish_wat("sleep")
    await runner.execute(sleep, body=struct.pack("<Q", 1_000_000))  # warm
    started = trio.current_time()
    result = await runner.execute(sleep, body=struct.pack("<Q", 15_000_000_000), limits={"timeout_ms": 200})
    elapsed = trio.current_time() - started
    assert result["error"] == "execute_failed: timeout"
    assert elapsed < 0.2 + DEADLINE_SLACK_S  # not the 15 s asked for


async def test_memory_limit_then_next_request_works(observing: RunnerHandle) -> None:
    # The runner observes the cap being hit (RUNNER_OBSERVE_MEMORY); without that it is a plain trap.
    runner = observing
    grow = await runner.publish_wat("grow")
    result = await runner.execute(grow, limits={"memory_mb": 16})
    assert result["status"] == 500
    assert result["error"] == "execute_failed: memory_limit"
    ok = await runner.execute(grow, body=struct.pack("<I", 2), limits={"memory_mb": 16})
    assert ok["status"] == 200


async def test_overloaded(runner_settings, shared, nursery: trio.Nursery) -> None:  # type: ignore[no-untyped-def]
    from tests.runner.http.conftest import start_runner

    handle = await start_runner(
        nursery, runner_settings(max_concurrency=1, max_queue=0, queue_timeout_ms=0), shared
    )
    spin = await handle.publish_wat("spin")
    results: list[dict[str, object]] = []

    async def call() -> None:
        results.append(await handle.execute(spin, limits={"timeout_ms": 500}))

    async with trio.open_nursery() as inner:
        inner.start_soon(call)
        await trio.sleep(0.2)
        inner.start_soon(call)
    statuses = sorted(int(r["status"]) for r in results)  # type: ignore[call-overload]
    assert statuses == [429, 504]
    assert any(r["error"] == "overloaded: queue full" for r in results)
    await handle.client.aclose()
    handle.shutdown.set()


async def test_idempotent_duplicates_execute_once(runner: RunnerHandle) -> None:
    digest = await runner.publish_wat("print")
    results: list[dict[str, object]] = []

    async def call() -> None:
        results.append(await runner.execute(digest, headers={"x-idempotency-key": "order-42"}))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(call)
    assert [r["status"] for r in results] == [200] * 5
    metrics = (await runner.client.get("/metrics")).text
    assert "runner_idempotent_replays_total 4.0" in metrics
    assert 'runner_invocations_total{outcome="ok"} 1.0' in metrics
    reused = await runner.execute(digest, body=b"other", headers={"x-idempotency-key": "order-42"})
    assert reused["error"] == "idempotency_key_reused"


async def test_warmup_health_ready_and_metrics(runner: RunnerHandle) -> None:
    digest = await runner.publish_wat("echo")
    response = await runner.client.post("/v1/warmup", json={"content_hash": digest})
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    missing = await runner.client.post("/v1/warmup", json={"content_hash": MISSING_HASH})
    assert missing.status_code == 502
    assert (await runner.client.get("/readyz")).json() == {"status": "ready"}
    await runner.execute(digest)
    text = (await runner.client.get("/metrics")).text
    for name in ("runner_invocations_total", "runner_invocation_seconds_bucket", "runner_inflight_invocations",
                 "runner_bundle_fetches_total", "runner_component_compiles_total",
                 "runner_component_cache_hits_total", "runner_precompiled_loads_total",
                 "runner_cache_evictions_total", "runner_cache_bytes", "runner_debug_events_total",
                 "runner_debug_events_dropped_total", "runner_egress_denied_total"):
        assert name in text, name


async def test_oversized_body_is_refused_clearly(runner: RunnerHandle) -> None:
    digest = await runner.publish_wat("echo")
    result = await runner.execute(digest, "/", method="POST", body=b"x" * (3 * 1024 * 1024))
    assert result["status"] == 413
    assert result["error"].startswith("payload_too_large")
