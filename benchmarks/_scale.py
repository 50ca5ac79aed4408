"""Benchmark ``scale``: throughput of two runner processes against one, on this machine's cores.

Two runner processes run over the warm cache for the whole benchmark; the load generator (closed loop,
``CLIENTS`` httpx clients, in the benchmark process) sends every request to runner A in a "1 process" slice
and alternates clients between A and B in a "2 processes" slice. Slices alternate. The same number of clients
is used for both, so the only difference is how many processes serve them. Workloads:

* ``burn``: a WAT guest spinning ~``BURN_MS`` ms of arithmetic per call — CPU-bound wasm, where wasmtime
  releases the GIL, so one process can already run guests on both cores from its worker threads;
* py-hello ``GET /hello``: a CPython-in-wasm guest (~2 ms) plus the runner's Python per request (HTTP, JSON,
  Store setup), where one process is bounded by its GIL.
"""

from __future__ import annotations

import json

import httpx

from . import _fleet
from ._common import Row, Workspace, burn_guest, execute_doc, execute_headers, log, pick
from ._load import LoadResult, Target, closed_loop, summarize
from ._procs import Service, start_runner, warmup

AIM = 1.7
CLIENTS = 8
BURN_ITERATIONS = 8_000_000  # ~10 ms per call here (epoch-interruption checks included)
BURN_MS = 10


async def _compare(ws: Workspace, label: str, runners: list[Service], doc: dict[str, object]) -> None:
    slice_s = pick(ws.quick, 2.0, 4.0)
    rounds = pick(ws.quick, 2, 4)
    body = json.dumps(doc).encode()
    targets = [Target(r.url, "/v1/execute", body, execute_headers()) for r in runners]
    layouts = {"1 process": targets[:1], "2 processes": targets}
    for chosen in layouts.values():
        await closed_loop(chosen, concurrency=CLIENTS, duration=0.5)
    slices: dict[str, list[LoadResult]] = {name: [] for name in layouts}
    for i in range(rounds):
        order = list(layouts) if i % 2 == 0 else list(reversed(layouts))
        for name in order:
            result = await closed_loop(layouts[name], concurrency=CLIENTS, duration=slice_s)
            if result.errors:
                raise RuntimeError(f"{label}, {name}: {result.errors} failed, first: {result.first_error}")
            slices[name].append(result)
            log(f"{label}, {name}: {result.rps:.0f} req/s")
    one, one_all = summarize(slices["1 process"])
    two, two_all = summarize(slices["2 processes"])
    ratio = two / one
    ws.report.add(Row(
        "scale",
        f"{label}: {CLIENTS} clients, req/s (p50 {one_all.p50 * 1e3:.1f} -> {two_all.p50 * 1e3:.1f} ms)",
        f"2 processes {two:.0f} req/s",
        f"1 process {one:.0f} req/s",
        f"{ratio:.2f}×",
        f"≥ {AIM}×",
        ratio >= AIM,
    ))


async def run(ws: Workspace) -> None:
    burn = await ws.publish_component("burn", burn_guest(BURN_ITERATIONS))
    py_hello = await ws.publish_sample("py-hello")
    runners = [await start_runner(ws), await start_runner(ws)]
    try:
        async with httpx.AsyncClient() as client:
            for runner in runners:
                await warmup(client, runner.url, burn)
                await warmup(client, runner.url, py_hello)
        await _compare(ws, f"burn guest (~{BURN_MS} ms of wasm per call)", runners,
                       execute_doc(burn, "/burn"))
        await _compare(ws, "py-hello GET /hello", runners,
                       execute_doc(py_hello, "/hello", query={"name": "scale"}))
    finally:
        for runner in runners:
            await runner.stop()
    await _fleet.run(ws)  # the same question through the gateway, with 1, 2 and 3 runners
