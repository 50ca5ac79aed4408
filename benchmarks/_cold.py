"""Benchmark ``cold``: the first request after a runner restart, precompiled artifact vs compile from bytes.

For the JS kitchen sink (12 MB component). Each sample is a new runner process; once it listens, the clock
runs from sending its first ``/v1/execute`` (``GET /echo``) to the answer:

* compile: an empty cache root, so the runner fetches the bundle from the store, verifies it, compiles the
  component from its bytes (Cranelift, parallel compilation) and stores the precompiled artifact;
* precompiled: a new process over a cache root that already holds the entry and the artifact (written by the
  first compile sample): the runner memory-maps the artifact instead of compiling.

The two kinds alternate. The artifact file is in the OS page cache (as after a restart on the same machine).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from ._common import Row, Workspace, check_ok, execute_doc, execute_headers, log, median, ms, pick
from ._procs import start_runner

AIM = 50.0
SAMPLE = "js-kitchen-sink"


async def _first_request(ws: Workspace, cache_root: Path, content_hash: str) -> tuple[float, float]:
    """(seconds of the first request, seconds from spawn to listening) of a new runner over ``cache_root``."""
    runner = await start_runner(ws, cache_root)
    try:
        async with httpx.AsyncClient(timeout=300) as client:
            doc = execute_doc(content_hash, "/echo", query={"cold": "1"})
            started = time.perf_counter()
            response = await client.post(f"{runner.url}/v1/execute", content=json.dumps(doc).encode(),
                                         headers=execute_headers())
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            check_ok(response.json(), "cold start")
    finally:
        await runner.stop()
    return elapsed, runner.started_s


async def run(ws: Workspace) -> None:
    rounds = pick(ws.quick, 1, 3)
    content_hash = await ws.publish_sample(SAMPLE)
    warm_root = ws.fresh_dir("cache-cold-warm")
    compiled: list[float] = []
    precompiled: list[float] = []
    starts: list[float] = []
    for i in range(rounds):
        # The first compile fills warm_root; later ones get an empty root of their own.
        root = warm_root if i == 0 else ws.fresh_dir("cache-cold-empty")
        seconds, start = await _first_request(ws, root, content_hash)
        compiled.append(seconds)
        starts.append(start)
        log(f"compile from bytes: first request {ms(seconds)}")
        seconds, start = await _first_request(ws, warm_root, content_hash)
        precompiled.append(seconds)
        starts.append(start)
        log(f"precompiled artifact: first request {ms(seconds)}")
    speedup = median(compiled) / median(precompiled)
    ws.report.add(Row(
        "cold",
        f"{SAMPLE} (12 MB) first request after restart, median of {rounds} (process start to listening "
        f"{ms(median(starts))}, not included)",
        f"precompiled {ms(median(precompiled))}",
        f"compile from bytes {ms(median(compiled))}",
        f"{speedup:.0f}× faster",
        f"≥ {AIM:g}×",
        speedup >= AIM,
    ))
