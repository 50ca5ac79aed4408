"""Benchmark ``memory``: RSS of an idle runner, and what each concurrent in-flight guest adds.

A runner with default settings (its process count stated in the row: a runner may run several worker
processes, and RSS is summed over the runner's whole process tree) starts on the warm cache and loads the
guests. Idle: RSS a second after the warm-up. In flight: ``IN_FLIGHT`` requests that keep their guest running
for a while (py-hello ``GET /sleep``, which blocks in WASI's clock; the WAT ``sleep`` guest) are sent at once
with admission limits raised so none queues; RSS is sampled while they run and the peak is kept. Per guest:
(peak - idle) / in flight. Informational rows (no DESIGN aim).
"""

from __future__ import annotations

import struct

import httpx
import trio

from ._common import Row, Workspace, check_ok, execute_doc, execute_headers, log, wat_guest
from ._procs import rss, start_runner, tree, warmup

IN_FLIGHT = 8
HOLD_MS = 1500
MIB = 1024 * 1024


async def _peak_while(pids: list[int], work: trio.Event) -> int:
    peak = 0
    while not work.is_set():
        peak = max(peak, rss(pids))
        await trio.sleep(0.05)
    return peak


async def _in_flight(client: httpx.AsyncClient, url: str, pids: list[int], doc: dict[str, object]) -> int:
    done = trio.Event()
    peak = 0

    async def one() -> None:
        response = await client.post(f"{url}/v1/execute", json=doc, headers=execute_headers(), timeout=60)
        check_ok(response.json(), "memory")

    async def watch() -> None:
        nonlocal peak
        peak = await _peak_while(pids, done)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        async with trio.open_nursery() as calls:
            for _ in range(IN_FLIGHT):
                calls.start_soon(one)
        done.set()
    return peak


async def run(ws: Workspace) -> None:
    py_hello = await ws.publish_sample("py-hello")
    sleeper = await ws.publish_component("sleep", wat_guest("sleep"))
    limit = str(IN_FLIGHT * 2)
    runner = await start_runner(ws, RUNNER_MAX_CONCURRENCY=limit, RUNNER_MAX_CONCURRENCY_PER_TENANT=limit,
                                RUNNER_MAX_CONCURRENCY_PER_EXTENSION=limit, RUNNER_MAX_QUEUE=limit)
    try:
        limits = httpx.Limits(max_connections=IN_FLIGHT * 2)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            await warmup(client, runner.url, py_hello)
            await warmup(client, runner.url, sleeper)
            hello = execute_doc(py_hello, "/hello", query={"name": "m"})
            for _ in range(IN_FLIGHT):  # every worker and thread has run a guest once
                check_ok((await client.post(f"{runner.url}/v1/execute", json=hello,
                                            headers=execute_headers())).json(), "memory warm-up")
            await trio.sleep(1.0)
            pids = tree(runner.process.pid)
            idle = rss(pids)
            log(f"idle runner: {len(pids)} process(es), {idle / MIB:.1f} MiB")
            py_doc = execute_doc(py_hello, "/sleep", query={"ms": str(HOLD_MS)})
            py_doc["limits"] = {"timeout_ms": HOLD_MS * 4}
            py_peak = await _in_flight(client, runner.url, pids, py_doc)
            await trio.sleep(1.0)
            wat_idle = rss(pids)
            wat_doc = execute_doc(sleeper, "/", method="POST", body=struct.pack("<Q", HOLD_MS * 1_000_000))
            wat_doc["limits"] = {"timeout_ms": HOLD_MS * 4}
            wat_peak = await _in_flight(client, runner.url, pids, wat_doc)
    finally:
        await runner.stop()

    procs = f"{len(pids)} process{'es' if len(pids) > 1 else ''}"
    ws.report.add(Row("memory", f"RSS of an idle runner ({procs}, py-hello and WAT guests loaded)",
                      f"{idle / MIB:.1f} MiB", "", "informational"))
    for label, base, peak in (("py-hello GET /sleep", idle, py_peak), ("WAT sleep", wat_idle, wat_peak)):
        per = (peak - base) / IN_FLIGHT
        ws.report.add(Row("memory", f"RSS per in-flight guest, {label}: {IN_FLIGHT} at once ({procs})",
                          f"{per / 1024:+.0f} KiB per guest" if abs(per) < MIB else f"{per / MIB:+.1f} MiB per guest",
                          f"peak {peak / MIB:.1f} MiB over {base / MIB:.1f} MiB", "informational"))
