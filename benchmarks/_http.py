"""Benchmark ``http``: ``POST /v1/execute`` throughput and latency against a bare Quart-trio endpoint.

Setup: the runner (``runner_trio.serve``, warm cache, the WAT ``echo`` guest) and the bare app
(``benchmarks._serve bare``: parses the same JSON, answers an envelope of the same shape, same Hypercorn
config) each run in their own process; the load generator (a few httpx clients, closed loop, keep-alive) runs
in the benchmark process. The servers are loaded in alternating slices, never at once.

Two more sides, informational, are the same runner started with ``RUNNER_MAX_CONCURRENCY=1`` and ``=2``: with a
guest this small, the worker threads running guests compete with the HTTP thread for the GIL (and two guest
threads of one process cost kernel time), so one against two guests at a time shows what a guest thread
limit sized 1 or 2 would give.
"""

from __future__ import annotations

import json

import httpx

from ._common import Row, Workspace, execute_doc, execute_headers, log, pick, wat_guest
from ._load import LoadResult, Target, closed_loop, summarize
from ._procs import process_count, start_runner, start_service, warmup

AIM = 0.6
P99_AIM_MS = 10.0
"""Issue 15: p99 at 4 clients (WAT echo)."""
CONCURRENCY = 4
BODY = b'{"hello": "world", "n": 42}'


async def run(ws: Workspace) -> None:
    quick = ws.quick
    slice_s = pick(quick, 2.0, 4.0)
    rounds = pick(quick, 2, 4)
    echo = await ws.publish_component("echo", wat_guest("echo"))
    doc = execute_doc(echo, "/bench", method="POST", body=BODY, headers={"content-type": "application/json"})
    body = json.dumps(doc).encode()

    runner = await start_runner(ws)
    serial = await start_runner(ws, RUNNER_MAX_CONCURRENCY="1")
    pair = await start_runner(ws, RUNNER_MAX_CONCURRENCY="2")
    bare = await start_service(ws, "bare", {})
    try:
        async with httpx.AsyncClient() as client:
            await warmup(client, runner.url, echo)
            await warmup(client, serial.url, echo)
            await warmup(client, pair.url, echo)
        targets = {
            "runner": Target(runner.url, "/v1/execute", body, execute_headers()),
            "bare": Target(bare.url, "/v1/execute", body, execute_headers()),
            "serial": Target(serial.url, "/v1/execute", body, execute_headers()),
            "pair": Target(pair.url, "/v1/execute", body, execute_headers()),
        }
        for target in targets.values():  # warm both (imports, first-request paths, connection setup)
            await closed_loop([target], concurrency=CONCURRENCY, duration=0.5)
        slices: dict[str, list[LoadResult]] = {name: [] for name in targets}
        for i in range(rounds):
            order = list(targets) if i % 2 == 0 else list(reversed(targets))
            for name in order:
                result = await closed_loop([targets[name]], concurrency=CONCURRENCY, duration=slice_s)
                if result.errors:
                    raise RuntimeError(f"{name}: {result.errors} failed requests, first: {result.first_error}")
                slices[name].append(result)
                log(f"{name}: {result.rps:.0f} req/s over {result.seconds:.1f} s")
        counts = {name: process_count(service) for name, service in
                  (("runner", runner), ("serial", serial), ("pair", pair), ("bare", bare))}
    finally:
        await runner.stop()
        await serial.stop()
        await pair.stop()
        await bare.stop()

    runner_rps, runner_all = summarize(slices["runner"])
    bare_rps, bare_all = summarize(slices["bare"])
    serial_rps, serial_all = summarize(slices["serial"])
    pair_rps, pair_all = summarize(slices["pair"])
    ratio = runner_rps / bare_rps
    ws.report.add(Row(
        "http",
        f"/v1/execute (WAT echo, {len(BODY)} B body) vs bare Quart-trio, {CONCURRENCY} clients, req/s",
        f"runner ({counts['runner']}) {runner_rps:.0f} req/s",
        f"bare ({counts['bare']}) {bare_rps:.0f} req/s",
        f"{ratio:.2f}×",
        f"≥ {AIM}×",
        ratio >= AIM,
    ))
    ws.report.add(Row(
        "http",
        f"latency p50 / p99 at {CONCURRENCY} clients (aim: runner p99)",
        f"runner {runner_all.p50 * 1e3:.2f} / {runner_all.p99 * 1e3:.2f} ms",
        f"bare {bare_all.p50 * 1e3:.2f} / {bare_all.p99 * 1e3:.2f} ms",
        f"+{(runner_all.p50 - bare_all.p50) * 1e3:.2f} ms p50",
        f"p99 ≤ {P99_AIM_MS:g} ms",
        runner_all.p99 * 1e3 <= P99_AIM_MS,
    ))
    ws.report.add(Row(
        "http",
        f"same, runner with RUNNER_MAX_CONCURRENCY=1 ({counts['serial']}; one guest at a time; informational)",
        f"runner {serial_rps:.0f} req/s, p50 {serial_all.p50 * 1e3:.2f} ms",
        f"bare {bare_rps:.0f} req/s",
        f"{serial_rps / bare_rps:.2f}×",
    ))
    ws.report.add(Row(
        "http",
        f"same, RUNNER_MAX_CONCURRENCY=2 ({counts['pair']}; two guests at a time) vs 1 (p99 {pair_all.p99 * 1e3:.2f} "
        f"vs {serial_all.p99 * 1e3:.2f} ms; informational)",
        f"2 at a time {pair_rps:.0f} req/s",
        f"1 at a time {serial_rps:.0f} req/s",
        f"{pair_rps / serial_rps:.2f}×",
    ))
