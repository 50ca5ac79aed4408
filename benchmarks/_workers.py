"""Benchmark ``workers``: one runner of ``RUNNER_WORKERS`` = one per CPU (the default) against the same runner
with ``RUNNER_WORKERS=1``, each behind its one port.

Both runners serve the WAT echo guest over the warm cache for the whole benchmark; the load generator (closed
loop, ``CLIENTS`` clients, each on one kept-alive connection, in the benchmark process) alternates slices
between them. The kernel (``SO_REUSEPORT``) gives each new connection to one worker: the per-worker request
counts (``runner_worker_requests_total{worker}`` of the default runner's ``/metrics``, over the measured
slices) show how evenly it spread them. Run once with the default caps (4 per tenant and per extension,
runner-wide) and once with caps of 64, where no invocation waits for a slot.
"""

from __future__ import annotations

import json
import os
import re

import httpx

from ._common import Row, Workspace, execute_doc, execute_headers, log, pick, wat_guest
from ._load import LoadResult, Target, closed_loop, summarize
from ._procs import Service, start_runner, warmup

AIM = 1.6
CLIENTS = 8
_WORKER_SAMPLE = re.compile(r'^runner_worker_requests_total\{worker="(\d+)"\} (\S+)$', re.MULTILINE)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


async def _per_worker(client: httpx.AsyncClient, url: str) -> dict[str, float]:
    response = await client.get(f"{url}/metrics", timeout=10)
    response.raise_for_status()
    return {m.group(1): float(m.group(2)) for m in _WORKER_SAMPLE.finditer(response.text)}


async def _compare(ws: Workspace, label: str, single: Service, multi: Service, workers: int, digest: str) -> None:
    slice_s = pick(ws.quick, 2.0, 4.0)
    rounds = pick(ws.quick, 2, 4)
    body = json.dumps(execute_doc(digest, "/echo", method="POST", body=b"hello workers")).encode()
    layouts = {
        "1 worker": Target(single.url, "/v1/execute", body, execute_headers()),
        f"{workers} workers": Target(multi.url, "/v1/execute", body, execute_headers()),
    }
    for target in layouts.values():
        await closed_loop([target], concurrency=CLIENTS, duration=0.5)
    slices: dict[str, list[LoadResult]] = {name: [] for name in layouts}
    async with httpx.AsyncClient() as client:
        before = await _per_worker(client, multi.url)
        for i in range(rounds):
            order = list(layouts) if i % 2 == 0 else list(reversed(layouts))
            for name in order:
                result = await closed_loop([layouts[name]], concurrency=CLIENTS, duration=slice_s)
                if result.errors:
                    raise RuntimeError(f"{label}, {name}: {result.errors} failed, first: {result.first_error}")
                slices[name].append(result)
                log(f"{label}, {name}: {result.rps:.0f} req/s")
        after = await _per_worker(client, multi.url)
    counts = {w: after.get(w, 0) - before.get(w, 0) for w in sorted(after)}
    total = sum(counts.values()) or 1
    split = " / ".join(f"{counts[w]:.0f}" for w in counts)
    shares = " / ".join(f"{counts[w] / total:.0%}" for w in counts)
    log(f"{label}: requests per worker over the measured slices: {split} ({shares})")
    one, one_all = summarize(slices["1 worker"])
    many, many_all = summarize(slices[f"{workers} workers"])
    ratio = many / one
    ws.report.add(Row(
        "workers",
        f"{label}: {CLIENTS} clients, req/s (p50 {one_all.p50 * 1e3:.1f} -> {many_all.p50 * 1e3:.1f} ms; "
        f"per worker {shares})",
        f"{workers} workers {many:.0f} req/s",
        f"1 worker {one:.0f} req/s",
        f"{ratio:.2f}×",
        f"≥ {AIM}×",
        ratio >= AIM,
    ))


async def run(ws: Workspace) -> None:
    digest = await ws.publish_component("echo", wat_guest("echo"))
    workers = max(2, _cpus())
    for label, caps in (
        ("WAT echo, default caps", {}),
        ("WAT echo, caps 64", {"RUNNER_MAX_CONCURRENCY_PER_TENANT": "64",
                               "RUNNER_MAX_CONCURRENCY_PER_EXTENSION": "64"}),
    ):
        single = await start_runner(ws, ws.warm_cache, RUNNER_WORKERS="1", **caps)
        multi = await start_runner(ws, ws.warm_cache, RUNNER_WORKERS="0", **caps)  # 0: the default, one per CPU
        try:
            async with httpx.AsyncClient() as client:
                await warmup(client, single.url, digest)
                await warmup(client, multi.url, digest)
            await _compare(ws, label, single, multi, workers, digest)
        finally:
            await single.stop()
            await multi.stop()
