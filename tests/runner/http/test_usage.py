"""``usage`` on ``/v1/execute`` answers and ``runner_usage_*_total``: a known workload measured end to end.

The workload is fixed (so the counts are exact, not within a tolerance): the JavaScript kitchen sink fetches a
known number of bytes from a real local server and writes known values to SQLite storage; ``caps.wat`` calls
every host function once; ``spin.wat`` burns CPU until its deadline. Times are only bounded from below
(generously) and compared with each other, never asserted against the clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import trio

from contract import USAGE_FIELDS
from runner_trio import Settings
from tests._redis import RedisServer, redis_server  # noqa: F401 - the fixture
from tests.guests.wat import load_wat
from tests.runner.capabilities._servers import Req, Resp, start_server

from .conftest import RunnerHandle, Shared, bundle_dir, start_runner

BLOB_BYTES = 20_000
VALUE_CHARS = 5_000
ROUNDS = 3
JS_CAPS = ["cap:http.fetch", "cap:storage.kv", "cap:log.emit"]


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one series of the Prometheus exposition (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
            return float(match.group(2))
    return 0.0


async def _blob(req: Req) -> Resp:
    return Resp(200, [("content-type", "application/octet-stream")], b"x" * BLOB_BYTES)


@pytest.mark.slow
async def test_usage_matches_a_known_workload_and_the_counters_add_up(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared,
    redis_server: RedisServer,  # noqa: F811 - the fixture
) -> None:
    upstream = await start_server(nursery, _blob)
    handle = await start_runner(
        nursery,
        runner_settings(egress_allowlist=(f"127.0.0.1:{upstream.port}",), debug_redis_url=redis_server.url),
        shared,
    )
    digest = await handle.publish_sample("js-kitchen-sink")

    async def call(path: str, body: Any = None, method: str = "POST") -> dict[str, Any]:
        raw = json.dumps(body).encode() if body is not None else None
        result = await handle.execute(digest, path, method=method, body=raw, providers=JS_CAPS,
                                      tenant="usage-t", extension="usage-e")
        assert result["error"] is None, result
        return result

    answers: list[dict[str, Any]] = []
    for _ in range(ROUNDS):
        fetched = await call("/http", {"url": f"{upstream.url}/blob"})
        usage = fetched["usage"]
        assert set(usage) >= set(USAGE_FIELDS)
        assert (usage["egress_requests"], usage["egress_bytes"]) == (1, BLOB_BYTES)  # GET: no body sent
        assert usage["calls.http"] == 1
        assert (usage["storage_ops"], usage["storage_bytes"]) == (0, 0)
        answers.append(fetched)
    for round_ in range(ROUNDS):
        put = await call("/storage", {"op": "put", "namespace": "n", "key": f"k{round_}", "value": "v" * VALUE_CHARS})
        usage = put["usage"]
        assert (usage["storage_ops"], usage["storage_bytes"]) == (1, VALUE_CHARS)
        assert usage["calls.storage"] == 1
        assert (usage["egress_requests"], usage["egress_bytes"]) == (0, 0)
        assert "calls.http" not in usage
        answers.append(put)
    listed = await call("/storage", {"op": "list", "namespace": "n"})
    assert (listed["usage"]["storage_ops"], listed["usage"]["storage_bytes"]) == (1, ROUNDS * VALUE_CHARS)
    answers.append(listed)
    # Guest logs: three logging calls and two console lines, each one debug event.
    logged = await call("/log", method="GET")
    assert logged["usage"]["calls.logging"] == 3
    assert logged["usage"]["debug_events"] == 5
    answers.append(logged)

    for answer in answers:
        usage = answer["usage"]
        assert usage["guest_cpu_ms"] > 0
        # The cap times the wall time, which a thread's CPU time never exceeds.
        assert usage["memory_mb_ms"] >= handle.settings.default_memory_mb * usage["guest_cpu_ms"] * 0.99

    # The Prometheus counters are the sums of the answers' usage.
    text = (await handle.client.get("/metrics")).text
    labels = {"tenant": "usage-t", "extension": "usage-e"}
    for field in USAGE_FIELDS:
        total = sum(answer["usage"][field] for answer in answers)
        assert metric(text, f"runner_usage_{field}_total", **labels) == pytest.approx(total, rel=1e-6, abs=1e-6)
    assert metric(text, "runner_usage_egress_bytes_total", **labels) == ROUNDS * BLOB_BYTES
    assert metric(text, "runner_usage_storage_bytes_total", **labels) == 2 * ROUNDS * VALUE_CHARS
    assert metric(text, "runner_usage_calls_total", **labels, capability="http") == ROUNDS
    assert metric(text, "runner_usage_calls_total", **labels, capability="storage") == ROUNDS + 1
    await handle.client.aclose()
    handle.shutdown.set()


async def test_host_calls_are_counted_per_capability_denied_ones_too(runner: RunnerHandle) -> None:
    src = bundle_dir(runner.shared.work, "usage-caps", load_wat("caps"), capabilities=["cap:storage.kv"])
    digest = await runner.publish_dir(src)
    result = await runner.execute(digest, providers=["cap:storage.kv"])
    assert result["error"] is None, result
    usage = result["usage"]
    # caps.wat calls every function once: storage's four reach the backend, http and secrets are denied.
    assert usage["calls.storage"] == 4
    assert usage["storage_ops"] == 4
    assert usage["calls.http"] == 1
    assert usage["calls.secrets"] == 2
    assert usage["egress_requests"] == 0, "a refused fetch is not egress"
    assert usage["calls.context"] == 1


async def test_a_guest_burning_cpu_is_billed_for_it_even_when_it_times_out(runner: RunnerHandle) -> None:
    spin = await runner.publish_wat("spin")
    echo = await runner.publish_wat("echo")
    busy = await runner.execute(spin, limits={"timeout_ms": 600, "memory_mb": 64})
    assert busy["error"].startswith("execute_failed: timeout"), busy
    idle = await runner.execute(echo, limits={"memory_mb": 64})
    assert idle["error"] is None
    # The spinning guest ran on its thread until its deadline: its CPU time is a good part of it (a generous
    # lower bound: the machine may be busy), and well above what an echo costs.
    assert busy["usage"]["guest_cpu_ms"] >= 50
    assert busy["usage"]["guest_cpu_ms"] > idle["usage"]["guest_cpu_ms"]
    # memory_mb_ms is the cap times the guest's wall time: at least the cap times the CPU time.
    assert busy["usage"]["memory_mb_ms"] >= 64 * busy["usage"]["guest_cpu_ms"] * 0.99
    assert busy["usage"]["memory_mb_ms"] > idle["usage"]["memory_mb_ms"]


async def test_no_usage_when_the_guest_never_started_or_the_answer_is_replayed(runner: RunnerHandle) -> None:
    missing = await runner.execute("sha256:" + "cd" * 32)
    assert missing["error"] is not None
    assert "usage" not in missing, "nothing ran: nothing to bill"
    echo = await runner.publish_wat("echo")
    first = await runner.execute(echo, headers={"x-idempotency-key": "usage-key-1"})
    again = await runner.execute(echo, headers={"x-idempotency-key": "usage-key-1"})
    assert first["usage"]["guest_cpu_ms"] > 0
    assert again["body_b64"] == first["body_b64"]
    assert "usage" not in again, "a replayed answer ran nothing: counted once, with the first"
