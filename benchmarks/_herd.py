"""Benchmark ``herd``: 50 concurrent requests on a hash the runner has never seen -> one fetch, one compile.

A new runner process over an empty cache root (so py-hello, an 18 MB component compiling for seconds, is
uncached for it) gets 50 ``/v1/execute`` at once on 50 connections. The runner's admission limits are raised to
50 for this run so that every request waits for the one compile instead of some being refused with 429 after
the queue timeout (with the defaults, 4 run per extension and the rest wait at most 2 s). ``/metrics`` is read
before and after: ``runner_bundle_fetches_total`` and ``runner_component_compiles_total`` must each grow by 1.
The runner runs the default number of worker processes (one per CPU) on its port: one fetch and one compile
per machine, across its workers (the figures are the whole runner's, read once every worker has copied its
cache figures into the shared metric files).
"""

from __future__ import annotations

import json
import time

import httpx
import trio

from ._common import Row, Workspace, execute_doc, execute_headers, ms
from ._procs import metric, start_runner

REQUESTS = 50
SAMPLE = "py-hello"
FETCHES = "runner_bundle_fetches_total"
COMPILES = "runner_component_compiles_total"
METRICS_SYNC_WAIT_S = 1.5  # > 2 × the interval at which each worker copies its cache figures (0.5 s)


async def run(ws: Workspace) -> None:
    content_hash = await ws.publish_sample(SAMPLE)
    limit = str(REQUESTS)
    runner = await start_runner(
        ws, ws.fresh_dir("cache-herd"), RUNNER_MAX_CONCURRENCY=limit, RUNNER_MAX_CONCURRENCY_PER_TENANT=limit,
        RUNNER_MAX_CONCURRENCY_PER_EXTENSION=limit, RUNNER_MAX_QUEUE=limit, RUNNER_WORKERS="0",
    )
    statuses: list[str] = []
    latencies: list[float] = []
    try:
        limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
        async with httpx.AsyncClient(timeout=300, limits=limits) as client:
            before = (await metric(client, runner.url, FETCHES), await metric(client, runner.url, COMPILES))
            started = time.perf_counter()

            async def one(i: int) -> None:
                doc = execute_doc(content_hash, "/hello", query={"name": f"herd-{i}"})
                t0 = time.perf_counter()
                response = await client.post(f"{runner.url}/v1/execute", content=json.dumps(doc).encode(),
                                             headers=execute_headers())
                latencies.append(time.perf_counter() - t0)
                result = response.json() if response.status_code == 200 else {}
                ok = result.get("status") == 200 and result.get("error") is None
                statuses.append("ok" if ok else f"{response.status_code}:{result.get('error')}")

            async with trio.open_nursery() as nursery:
                for i in range(REQUESTS):
                    nursery.start_soon(one, i)
            wall = time.perf_counter() - started
            await trio.sleep(METRICS_SYNC_WAIT_S)
            after = (await metric(client, runner.url, FETCHES), await metric(client, runner.url, COMPILES))
    finally:
        await runner.stop()
    fetches, compiles = after[0] - before[0], after[1] - before[1]
    good = statuses.count("ok")
    passed = fetches == 1 and compiles == 1 and good == REQUESTS
    others = sorted({s for s in statuses if s != "ok"})
    ws.report.add(Row(
        "herd",
        f"{REQUESTS} concurrent /v1/execute on an uncached {SAMPLE} hash, default workers (all answered in "
        f"{ms(wall)}; fastest {ms(min(latencies))})",
        f"fetches {fetches:g}, compiles {compiles:g}",
        f"{good}/{REQUESTS} answered 200" + (f" (others: {', '.join(others)[:120]})" if others else ""),
        "PASS" if passed else "FAIL",
        "exactly 1 fetch + 1 compile",
        passed,
    ))
