"""Benchmark ``workers``: one runner of ``RUNNER_WORKERS`` = one per CPU (the default) against the same runner
with ``RUNNER_WORKERS=1`` and against a bare Quart-trio endpoint run with as many processes, each behind its
one port.

The runners serve over the warm cache; the load generator (closed loop, each client on one kept-alive
connection, in the benchmark process) alternates slices between the sides. Each new connection goes to the
worker holding the fewest (``servicekit.ConnectionBalance``): the per-worker request counts
(``runner_worker_requests_total{worker}`` of the default runner's ``/metrics``, over the measured slices) show
how evenly they spread. The bare side (``benchmarks._serve bare`` with ``BENCH_BARE_PROCESSES``) shares its port
between its processes the same way.

Rows (issue 15's "Done means", each side by side in one run):

* WAT echo, default caps (4 per tenant and per extension, runner-wide), ``CLIENTS`` clients: N workers vs one
  worker, and N workers vs the bare endpoint with N processes; then p99 of the default runner at
  ``P99_CLIENTS`` clients (the bare endpoint's beside it);
* WAT echo with caps of 64 (no invocation waits for a slot): N workers vs one;
* py-hello ``GET /hello``: N workers vs one (the single-process figure);
* guests started at once per worker (``RUNNER_GUEST_THREADS``) with N workers: 1 vs 2 vs 0 (all of
  ``RUNNER_MAX_CONCURRENCY``, the default), WAT echo and py-hello at ``CLIENTS`` clients, caps 64
  (informational: how the default was chosen, see docs/runner.md).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import httpx

from ._common import Row, Workspace, execute_doc, execute_headers, log, median, pick, wat_guest
from ._load import LoadResult, Target, WrkResult, closed_loop, summarize, wrk_slice
from ._procs import cpu_seconds, process_count, start_runner, start_service, tree, warmup

AIM = 1.6
PY_AIM = 2.0
"""py-hello on the default runner against its single-process figure (``RUNNER_WORKERS=1``)."""
BARE_AIM = 0.5
BARE_GOAL = 0.6
P99_AIM_MS = 10.0
CLIENTS = 8
P99_CLIENTS = 4
_WORKER_SAMPLE = re.compile(r'^runner_worker_requests_total\{worker="(\d+)"\} (\S+)$', re.MULTILINE)
_CAPS_64: dict[str, str] = {"RUNNER_MAX_CONCURRENCY_PER_TENANT": "64", "RUNNER_MAX_CONCURRENCY_PER_EXTENSION": "64"}


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


async def _per_worker(client: httpx.AsyncClient, url: str) -> dict[str, float]:
    response = await client.get(f"{url}/metrics", timeout=10)
    response.raise_for_status()
    return {m.group(1): float(m.group(2)) for m in _WORKER_SAMPLE.finditer(response.text)}


def _cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children so far (processes gone meanwhile count 0)."""
    total = 0.0
    for each in tree(pid):
        try:
            total += cpu_seconds(each)
        except OSError:
            continue
    return total


async def _slices(ws: Workspace, label: str, sides: dict[str, Target], clients: int,
                  pids: dict[str, int] | None = None, cpu: dict[str, float] | None = None) -> dict[str, LoadResult]:
    """Alternating slices over ``sides``; each side's (median req/s, all slices merged) as a merged result.

    With ``pids`` (side -> the service's process), ``cpu`` gets each side's CPU seconds per request over its
    slices (the service's whole process tree): steadier than throughput when other jobs load the machine.
    """
    spent: dict[str, float] = {name: 0.0 for name in sides}
    slice_s = pick(ws.quick, 2.0, 4.0)
    rounds = pick(ws.quick, 2, 4)
    for target in sides.values():
        await closed_loop([target], concurrency=clients, duration=0.5)
    slices: dict[str, list[LoadResult]] = {name: [] for name in sides}
    for i in range(rounds):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        for name in order:
            before = _cpu(pids[name]) if pids else 0.0
            result = await closed_loop([sides[name]], concurrency=clients, duration=slice_s)
            if pids:
                spent[name] += _cpu(pids[name]) - before
            if result.errors:
                raise RuntimeError(f"{label}, {name}: {result.errors} failed, first: {result.first_error}")
            slices[name].append(result)
            log(f"{label}, {name}, {clients} clients: {result.rps:.0f} req/s")
    merged: dict[str, LoadResult] = {}
    for name, results in slices.items():
        rps, everything = summarize(results)
        everything.seconds = everything.requests / rps if rps else 0.0  # so .rps is the median over slices
        merged[name] = everything
        if cpu is not None and pids:
            cpu[name] = spent[name] / max(1, everything.requests)
    return merged


async def _spread(client: httpx.AsyncClient, url: str, before: dict[str, float]) -> str:
    after = await _per_worker(client, url)
    counts = {w: after.get(w, 0) - before.get(w, 0) for w in sorted(after)}
    total = sum(counts.values()) or 1
    return " / ".join(f"{counts[w] / total:.0%}" for w in counts)


def _ratio_row(ws: Workspace, what: str, many: LoadResult, one: LoadResult, left: str, right: str,
               aim: float, goal: str = "") -> None:
    ratio = many.rps / one.rps
    ws.report.add(Row(
        "workers",
        f"{what} (p50 {one.p50 * 1e3:.1f} -> {many.p50 * 1e3:.1f} ms{goal})",
        f"{left} {many.rps:.0f} req/s",
        f"{right} {one.rps:.0f} req/s",
        f"{ratio:.2f}×",
        f"≥ {aim}×",
        ratio >= aim,
    ))


async def _echo_default_caps(ws: Workspace, digest: str, workers: int) -> None:
    body = json.dumps(execute_doc(digest, "/echo", method="POST", body=b"hello workers")).encode()
    single = await start_runner(ws, ws.warm_cache, RUNNER_WORKERS="1")
    multi = await start_runner(ws, ws.warm_cache, RUNNER_WORKERS="0")  # 0: the default, one per CPU
    bare = await start_service(ws, "bare", {"BENCH_BARE_PROCESSES": str(workers)})
    try:
        async with httpx.AsyncClient() as client:
            await warmup(client, single.url, digest)
            await warmup(client, multi.url, digest)
            before = await _per_worker(client, multi.url)
            counts = {name: process_count(s) for name, s in (("single", single), ("multi", multi), ("bare", bare))}
            sides = {
                "1 worker": Target(single.url, "/v1/execute", body, execute_headers()),
                f"{workers} workers": Target(multi.url, "/v1/execute", body, execute_headers()),
                f"bare x{workers}": Target(bare.url, "/v1/execute", body, execute_headers()),
            }
            pids = dict(zip(sides, (single.process.pid, multi.process.pid, bare.process.pid), strict=True))
            cpu: dict[str, float] = {}
            got = await _slices(ws, "WAT echo, default caps", sides, CLIENTS, pids, cpu)
            shares = await _spread(client, multi.url, before)
            tail_sides = {name: sides[name] for name in (f"{workers} workers", f"bare x{workers}")}
            tail = await _slices(ws, "WAT echo, default caps", tail_sides, P99_CLIENTS)
            wrk_tail = await _wrk_slices(ws, tail_sides, P99_CLIENTS)
    finally:
        await single.stop()
        await multi.stop()
        await bare.stop()
    many, one, reference = got[f"{workers} workers"], got["1 worker"], got[f"bare x{workers}"]
    _ratio_row(ws, f"WAT echo, default caps, {CLIENTS} clients: default runner vs RUNNER_WORKERS=1 "
               f"(per worker {shares})", many, one, f"{workers} workers ({counts['multi']})",
               f"1 worker ({counts['single']})", AIM)
    _ratio_row(ws, f"WAT echo, default caps, {CLIENTS} clients: default runner `/v1/execute` vs the bare "
               f"Quart-trio endpoint with as many processes on one port, connections balanced alike", many, reference,
               f"runner, {workers} workers ({counts['multi']})", f"bare, {workers} processes ({counts['bare']})",
               BARE_AIM, f"; the aim stays {BARE_GOAL}×")
    ws.report.add(Row(
        "workers",
        f"WAT echo, default caps, {CLIENTS} clients: CPU per request of each side's processes (user + system; "
        f"steadier than req/s on a loaded machine; 1 worker {cpu['1 worker'] * 1e3:.2f} ms)",
        f"runner, {workers} workers {cpu[f'{workers} workers'] * 1e3:.2f} ms",
        f"bare, {workers} processes {cpu[f'bare x{workers}'] * 1e3:.2f} ms",
        f"{cpu[f'{workers} workers'] / cpu[f'bare x{workers}']:.2f}× the CPU",
    ))
    runner_tail, bare_tail = tail[f"{workers} workers"], tail[f"bare x{workers}"]
    ws.report.add(Row(
        "workers",
        f"WAT echo, default runner ({workers} workers), p50 / p99 at {P99_CLIENTS} clients "
        f"({runner_tail.rps:.0f} vs {bare_tail.rps:.0f} req/s)",
        f"runner {runner_tail.p50 * 1e3:.2f} / {runner_tail.p99 * 1e3:.2f} ms",
        f"bare x{workers} {bare_tail.p50 * 1e3:.2f} / {bare_tail.p99 * 1e3:.2f} ms",
        f"p99 {runner_tail.p99 * 1e3:.2f} ms",
        f"p99 ≤ {P99_AIM_MS:g} ms",
        runner_tail.p99 * 1e3 <= P99_AIM_MS,
    ))
    runner_wrk, bare_wrk = wrk_tail[f"{workers} workers"], wrk_tail[f"bare x{workers}"]
    ws.report.add(Row(
        "workers",
        f"same, measured by wrk (a C client: no Python client's CPU on the same cores; median of "
        f"{len(runner_wrk)} slices' p50 and p99) ({median([r.rps for r in runner_wrk]):.0f} vs "
        f"{median([r.rps for r in bare_wrk]):.0f} req/s)",
        f"runner {median([r.p50 for r in runner_wrk]) * 1e3:.2f} / {median([r.p99 for r in runner_wrk]) * 1e3:.2f} ms",
        f"bare x{workers} {median([r.p50 for r in bare_wrk]) * 1e3:.2f} / "
        f"{median([r.p99 for r in bare_wrk]) * 1e3:.2f} ms",
        f"p99 {median([r.p99 for r in runner_wrk]) * 1e3:.2f} ms",
        f"p99 ≤ {P99_AIM_MS:g} ms",
        median([r.p99 for r in runner_wrk]) * 1e3 <= P99_AIM_MS,
    ))


async def _wrk_slices(ws: Workspace, sides: dict[str, Target], clients: int) -> dict[str, list[WrkResult]]:
    """Alternating ``wrk`` slices over ``sides`` (as :func:`_slices` does with the Python client)."""
    slice_s = pick(ws.quick, 2.0, 4.0)
    rounds = pick(ws.quick, 2, 4)
    got: dict[str, list[WrkResult]] = {name: [] for name in sides}
    for i in range(rounds):
        for name in list(sides) if i % 2 == 0 else list(reversed(sides)):
            result = await wrk_slice(sides[name], connections=clients, duration=slice_s)
            got[name].append(result)
            log(f"wrk, {name}, {clients} connections: {result.rps:.0f} req/s, p99 {result.p99 * 1e3:.2f} ms")
    return got


async def _one_vs_many(ws: Workspace, label: str, digest: str, doc: dict[str, Any], workers: int, aim: float,
                       **caps: str) -> None:
    body = json.dumps(doc).encode()
    single = await start_runner(ws, ws.warm_cache, RUNNER_WORKERS="1", **caps)
    multi = await start_runner(ws, ws.warm_cache, RUNNER_WORKERS="0", **caps)
    try:
        async with httpx.AsyncClient() as client:
            await warmup(client, single.url, digest)
            await warmup(client, multi.url, digest)
            before = await _per_worker(client, multi.url)
            sides = {
                "1 worker": Target(single.url, "/v1/execute", body, execute_headers()),
                f"{workers} workers": Target(multi.url, "/v1/execute", body, execute_headers()),
            }
            got = await _slices(ws, label, sides, CLIENTS)
            shares = await _spread(client, multi.url, before)
    finally:
        await single.stop()
        await multi.stop()
    _ratio_row(ws, f"{label}, {CLIENTS} clients: default runner vs RUNNER_WORKERS=1 (per worker {shares})",
               got[f"{workers} workers"], got["1 worker"], f"{workers} workers", "1 worker", aim)


async def _guest_threads(ws: Workspace, echo: str, py_hello: str, workers: int) -> None:
    choices = {"1": "1", "2": "2", "0": ""}  # "": the default, 0 (all at once)
    runners = {name: await start_runner(ws, ws.warm_cache, RUNNER_WORKERS="0", **_CAPS_64,
                                        **({"RUNNER_GUEST_THREADS": n} if n else {}))
               for name, n in choices.items()}
    try:
        async with httpx.AsyncClient() as client:
            for runner in runners.values():
                await warmup(client, runner.url, echo)
                await warmup(client, runner.url, py_hello)
        for label, doc in (
            ("WAT echo", execute_doc(echo, "/echo", method="POST", body=b"hello workers")),
            ("py-hello GET /hello", execute_doc(py_hello, "/hello", query={"name": "workers"})),
        ):
            body = json.dumps(doc).encode()
            sides = {name: Target(r.url, "/v1/execute", body, execute_headers()) for name, r in runners.items()}
            got = await _slices(ws, f"{label}, RUNNER_GUEST_THREADS", sides, CLIENTS)
            one, two, every = got["1"], got["2"], got["0"]
            ws.report.add(Row(
                "workers",
                f"{label}, {workers} workers, caps 64, {CLIENTS} clients: RUNNER_GUEST_THREADS=1 (one more per guest "
                f"past the stall time) vs =0 (all RUNNER_MAX_CONCURRENCY at once, the default) "
                f"(p50 / p99 {one.p50 * 1e3:.1f} / {one.p99 * 1e3:.1f} vs {every.p50 * 1e3:.1f} / "
                f"{every.p99 * 1e3:.1f} ms; =2: {two.rps:.0f} req/s, "
                f"p99 {two.p99 * 1e3:.1f} ms)",
                f"1 at once {one.rps:.0f} req/s",
                f"all at once {every.rps:.0f} req/s",
                f"{one.rps / every.rps:.2f}×",
            ))
    finally:
        for runner in runners.values():
            await runner.stop()


async def run(ws: Workspace) -> None:
    digest = await ws.publish_component("echo", wat_guest("echo"))
    py_hello = await ws.publish_sample("py-hello")
    workers = max(2, _cpus())
    await _echo_default_caps(ws, digest, workers)
    await _one_vs_many(ws, "WAT echo, caps 64", digest,
                       execute_doc(digest, "/echo", method="POST", body=b"hello workers"), workers, AIM, **_CAPS_64)
    await _one_vs_many(ws, "py-hello GET /hello, default caps", py_hello,
                       execute_doc(py_hello, "/hello", query={"name": "workers"}), workers, PY_AIM)
    await _guest_threads(ws, digest, py_hello, workers)
