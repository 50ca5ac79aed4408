"""Benchmark ``fairness``: a steady tenant's latency alone and beside a tenant bursting 10:1, under the fair
admission queue and under first come, first served, side by side in one run.

Setup: two runner processes (one worker each), identical but for ``RUNNER_ADMISSION_QUEUE`` (``fair``, then
``fifo``), with 4 slots (``RUNNER_MAX_CONCURRENCY=4``) and per-tenant and per-extension caps above that (64):
the per-tenant cap does not split the slots, only the queue discipline does. The guest is ``sleep`` (a WASI
sleep of :data:`GUEST_MS` ms): it holds a slot without burning CPU, so the row measures queueing, not the
machine's two cores. Tenant A: :data:`STEADY_CLIENTS` clients in a closed loop with :data:`THINK_MS` ms
between calls. Tenant B: ten times as many clients, no think time. A's p50 and p99 alone, then with B's burst
running; the aim (issue 20): A's p99 with the burst within 3× of alone.
"""

from __future__ import annotations

import json
import struct
import time
from typing import Any, Final

import httpx
import trio

from ._common import Row, Workspace, execute_doc, execute_headers, log, ms, percentile, pick, wat_guest
from ._procs import start_runner, warmup

GUEST_MS: Final = 50
THINK_MS: Final = 20
STEADY_CLIENTS: Final = 2
BURST_FACTOR: Final = 10
SLOTS: Final = 4
AIM: Final = 3.0


def _doc(content_hash: str, tenant: str) -> bytes:
    doc = execute_doc(content_hash, "/", method="POST", body=struct.pack("<Q", GUEST_MS * 1_000_000) + b"\0",
                      tenant=tenant, extension=f"{tenant}-ext")
    doc["limits"] = {"timeout_ms": 30_000}
    return json.dumps(doc).encode()


async def _call(client: httpx.AsyncClient, url: str, body: bytes, tenant: str) -> float:
    started = time.perf_counter()
    response = await client.post(f"{url}/v1/execute", content=body, headers=execute_headers(tenant, f"{tenant}-ext"))
    seconds = time.perf_counter() - started
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    if result["error"] is not None:
        raise RuntimeError(f"{tenant}: {result['error']}")
    return seconds


async def _steady(url: str, body: bytes, calls: int) -> list[float]:
    """Tenant A: STEADY_CLIENTS closed-loop clients, ``calls`` each; every call's latency."""
    times: list[float] = []

    async def client() -> None:
        async with httpx.AsyncClient(timeout=60) as own:
            for _ in range(calls):
                times.append(await _call(own, url, body, "tenant-a"))
                await trio.sleep(THINK_MS / 1000)

    async with trio.open_nursery() as nursery:
        for _ in range(STEADY_CLIENTS):
            nursery.start_soon(client)
    return times


async def _with_burst(url: str, steady: bytes, burst: bytes, calls: int) -> tuple[list[float], int]:
    done = 0

    async def burster() -> None:
        nonlocal done
        async with httpx.AsyncClient(timeout=60) as own:
            while True:
                await _call(own, url, burst, "tenant-b")
                done += 1

    async with trio.open_nursery() as nursery:
        for _ in range(STEADY_CLIENTS * BURST_FACTOR):
            nursery.start_soon(burster)
        await trio.sleep(0.5)  # the burst's queue is full before A starts
        times = await _steady(url, steady, calls)
        nursery.cancel_scope.cancel()
    return times, done


async def _measure(ws: Workspace, discipline: str, content_hash: str, calls: int) -> None:
    runner = await start_runner(
        ws,
        RUNNER_ADMISSION_QUEUE=discipline,
        RUNNER_MAX_CONCURRENCY=str(SLOTS),
        RUNNER_MAX_CONCURRENCY_PER_TENANT="64",
        RUNNER_MAX_CONCURRENCY_PER_EXTENSION="64",
        RUNNER_MAX_QUEUE="256",
        RUNNER_QUEUE_TIMEOUT_MS="30000",
    )
    try:
        async with httpx.AsyncClient(timeout=120) as client:
            await warmup(client, runner.url, content_hash)
        steady, burst = _doc(content_hash, "tenant-a"), _doc(content_hash, "tenant-b")
        await _steady(runner.url, steady, 10)
        alone = await _steady(runner.url, steady, calls)
        beside, done = await _with_burst(runner.url, steady, burst, calls)
    finally:
        await runner.stop()
    a50, a99 = percentile(alone, 50), percentile(alone, 99)
    b50, b99 = percentile(beside, 50), percentile(beside, 99)
    ratio = b99 / a99
    log(f"{discipline}: A alone p50 {ms(a50)} p99 {ms(a99)}; with B's burst p50 {ms(b50)} p99 {ms(b99)} "
        f"({done} burst calls)")
    ws.report.add(Row(
        "fairness",
        f"RUNNER_ADMISSION_QUEUE={discipline}: tenant A ({STEADY_CLIENTS} clients, {len(beside)} calls) p99 with "
        f"tenant B bursting {BURST_FACTOR}:1 ({done} calls) vs alone; {SLOTS} slots, {GUEST_MS} ms guest",
        f"with burst p50 {ms(b50)}, p99 {ms(b99)}",
        f"alone p50 {ms(a50)}, p99 {ms(a99)}",
        f"{ratio:.2f}×",
        f"≤ {AIM:g}×" if discipline == "fair" else "",
        ratio <= AIM if discipline == "fair" else None,
    ))


async def run(ws: Workspace) -> None:
    content_hash = await ws.publish_component("sleep", wat_guest("sleep"))
    calls = pick(ws.quick, 60, 200)
    for discipline in ("fair", "fifo"):
        await _measure(ws, discipline, content_hash, calls)
