"""One deadline per invocation: loading the bundle takes no slot, and ``limits.timeout_ms`` bounds loading,
queueing and the guest together; ``server-timing`` says where the time went."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from runner_trio import Settings
from tests._timing import DEADLINE_SLACK_S
from tests.runner.http.conftest import RunnerHandle, Shared, decode_body, start_runner


def _doc(digest: str, *, timeout_ms: int, path: str = "/", tenant: str = "tenant-a",
         extension: str = "ext-1") -> dict[str, Any]:
    return {
        "context": {"tenant_id": tenant, "extension_id": extension, "content_hash": digest},
        "http": {"method": "GET", "path": path, "query": {}, "headers": {}},
        "limits": {"timeout_ms": timeout_ms},
    }


async def _post(handle: RunnerHandle, doc: dict[str, Any]) -> httpx.Response:
    ctx = doc["context"]
    response = await handle.client.post(
        "/v1/execute", json=doc, headers={"x-alga-tenant": ctx["tenant_id"], "x-alga-extension": ctx["extension_id"]}
    )
    assert response.status_code == 200, response.text
    return response


def timing_of(response: httpx.Response) -> dict[str, float]:
    """``server-timing: queue;dur=1.0, load;dur=2.0, guest;dur=3.0`` -> seconds by phase."""
    found = {m[1]: float(m[2]) / 1000 for m in re.finditer(r"(\w+);dur=([\d.]+)", response.headers["server-timing"])}
    assert set(found) == {"queue", "load", "guest"}, response.headers["server-timing"]
    return found


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} ([\d.e+]+)$", text, re.MULTILINE)
    assert match is not None, name
    return float(match[1])


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_cold_burst_loads_once_without_holding_slots(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared, tmp_path: Path
) -> None:
    # Default settings (8 slots, 4 per tenant and extension, a 2 s queue) and a cache of its own, so the bundle
    # is fetched and compiled here: ~9 s alone (40 s was seen on a loaded 2-core machine), past the queue timeout.
    handle = await start_runner(nursery, runner_settings(cache_root=tmp_path / "cold-cache"), shared)
    digest = await handle.publish_sample("py-hello")
    responses: list[httpx.Response] = []
    impatient: dict[str, Any] = {}

    async def call() -> None:
        responses.append(await _post(handle, _doc(digest, path="/hello", timeout_ms=120_000)))

    async def short_deadline() -> None:
        started = trio.current_time()
        impatient["response"] = await _post(handle, _doc(digest, path="/hello", timeout_ms=300))
        impatient["seconds"] = trio.current_time() - started

    async with trio.open_nursery() as burst:
        # The first to ask has the shortest deadline: its leaving must not cancel the load the others wait for.
        burst.start_soon(short_deadline)
        await trio.sleep(0.05)
        for _ in range(50):
            burst.start_soon(call)

    errors = [r.json()["error"] for r in responses if r.json()["error"] is not None]
    assert errors == []
    assert [r.json()["status"] for r in responses] == [200] * 50
    assert all(decode_body(r.json()).startswith(b'{"greeting"') for r in responses)
    assert impatient["response"].json()["error"] == "execute_failed: timeout"
    assert impatient["seconds"] < 0.3 + DEADLINE_SLACK_S, "answered at its deadline, not after the compile"
    assert timing_of(impatient["response"])["guest"] == 0, "no guest starts once the deadline passed"
    text = (await handle.client.get("/metrics")).text
    assert metric(text, "runner_bundle_fetches_total") == 1
    assert metric(text, "runner_component_compiles_total") == 1
    assert 'runner_invocations_total{outcome="overloaded"} 0.0' in text
    await handle.client.aclose()
    handle.shutdown.set()


async def test_queueing_spends_the_deadline(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared
) -> None:
    handle = await start_runner(
        nursery, runner_settings(max_concurrency=1, queue_timeout_ms=20_000), shared
    )
    spin = await handle.publish_wat("spin")
    await _post(handle, _doc(spin, timeout_ms=50))  # compiled and cached: what follows is queue and guest
    outcome: dict[str, Any] = {}

    async def holder() -> None:
        await _post(handle, _doc(spin, timeout_ms=2000, extension="ext-hold"))

    async def queued(name: str, timeout_ms: int) -> None:
        started = trio.current_time()
        outcome[name] = await _post(handle, _doc(spin, timeout_ms=timeout_ms, extension=f"ext-{name}"))
        outcome[f"{name}_seconds"] = trio.current_time() - started

    async with trio.open_nursery() as inner:
        inner.start_soon(holder)  # holds the only slot for 2 s (the spin guest never ends by itself)
        await trio.sleep(0.3)
        inner.start_soon(queued, "waits", 3000)
        inner.start_soon(queued, "expires", 500)

    waits = outcome["waits"]
    timing = timing_of(waits)
    assert waits.json()["error"] == "execute_failed: timeout"
    assert timing["queue"] >= 1.0, timing
    # The guest got what was left of 3 s, not a fresh 3 s.
    assert timing["guest"] < 3.0 - 0.5, timing
    assert outcome["waits_seconds"] < 3.0 + DEADLINE_SLACK_S
    # The three phases account for the wall time the caller saw.
    assert sum(timing.values()) <= outcome["waits_seconds"]
    assert outcome["waits_seconds"] - sum(timing.values()) < 0.5

    expired = outcome["expires"]
    assert expired.json() == {"status": 504, "headers": {}, "body_b64": None, "error": "execute_failed: timeout"}
    assert timing_of(expired)["guest"] == 0, "the deadline passed in the queue: no guest started"
    assert outcome["expires_seconds"] < 0.5 + DEADLINE_SLACK_S
    await handle.client.aclose()
    handle.shutdown.set()


async def test_timing_header_on_a_warm_call(runner: RunnerHandle) -> None:
    echo = await runner.publish_wat("echo")
    await _post(runner, _doc(echo, timeout_ms=5000))
    started = trio.current_time()
    response = await _post(runner, _doc(echo, timeout_ms=5000))
    wall = trio.current_time() - started
    timing = timing_of(response)
    assert response.json()["status"] == 200
    assert timing["queue"] < 0.5
    assert timing["load"] < 0.5
    assert 0 < sum(timing.values()) <= wall



async def test_a_failed_load_reaches_every_waiter_and_is_tried_again(runner: RunnerHandle) -> None:
    missing = "ab" * 32
    responses: list[httpx.Response] = []

    async def call() -> None:
        responses.append(await _post(runner, _doc(missing, timeout_ms=5000)))

    async with trio.open_nursery() as burst:
        for _ in range(5):
            burst.start_soon(call)
    assert {r.json()["status"] for r in responses} == {502}
    assert all(r.json()["error"].startswith("bundle_fetch_failed") for r in responses)
    again = await _post(runner, _doc(missing, timeout_ms=5000))
    assert again.json()["error"].startswith("bundle_fetch_failed"), "a failure is not remembered"
