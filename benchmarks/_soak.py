"""Benchmark ``soak``: 10,000 mixed calls at concurrency 64 through a real gateway to two real runners; every
call answered and matched to its request by id, none lost (issue 13, item 7). Runs only when named.

The plan, the clients and the checks are those of the load test in ``scripts/test``
(``tests/system/test_load.py``, built from ``tests/system/_load_plan.py`` and ``_load_drive.py``), five times
longer and twice as concurrent, and with POSTs that carry no idempotency key (the gateway may not retry them,
so every call lost on the runner hop shows): GETs and POSTs answered by the WAT echo guest, a tenant over its rate limit
(exactly 5% of the calls get 429), bad tokens (401), undeclared endpoints (404), an httpx pool of 64
kept-alive connections plus 8 raw sockets that keep reusing their connection after early answers.

It prints throughput, p50/p99 latency of the calls answered as planned, errors by kind, and RSS, open files
and CPU time of each process at the start and the end of the load. The row's aim is "0 lost or mismatched";
the runners' guest runs must equal the 200 answers and the audit log must hold one row per call that passed
the rate limit, with the status the client saw.
"""

from __future__ import annotations

import os
import secrets
from typing import Final

import httpx
import trio

from tests.system._load_drive import (
    audit_statuses,
    check,
    drive,
    install_tenants,
    ok_invocations,
    process_table,
    publish_echo,
    sample_all,
    summary,
)
from tests.system._load_plan import RATE_LIMIT_RPS, build_plan, rate_limit_burst
from tests.system._procs import sample_process

from ._common import SERVICE_TOKEN, Row, Workspace, log, ms, percentile, pick, wat_guest
from ._procs import Service, runner_env, start_service, warmup

CONCURRENCY: Final = 64
RAW_SOCKETS: Final = 8
LOAD_BUDGET_S: Final = 600.0
"""A hang fails the run here; 2,000 calls took 63-81 s on 2 cores at load average 11-15 (less when idle)."""
ADMIN_TOKEN: Final = secrets.token_urlsafe(24)
# Runner admission is not what this measures (see `herd`): a queue long and patient enough for 64 callers.
RUNNER_SETTINGS: Final = {"RUNNER_MAX_QUEUE": "512", "RUNNER_QUEUE_TIMEOUT_MS": "60000"}


async def run(ws: Workspace) -> None:
    total = pick(ws.quick, 2_000, 10_000)
    content_hash = await publish_echo(ws.store_uri, ws.base, wat_guest("echo"))
    burst = rate_limit_burst(total)
    services: list[Service] = []
    try:
        for _ in range(2):
            services.append(await start_service(ws, "runner", runner_env(ws, ws.warm_cache, **RUNNER_SETTINGS)))
        runners = list(services)
        registry = ws.fresh_dir("soak-registry") / "registry.sqlite3"
        gateway = await start_service(ws, "gateway", {
            "GATEWAY_BIND": "127.0.0.1:0",
            "RUNNER_BASE_URL": ",".join(r.url for r in runners),
            "RUNNER_SERVICE_TOKEN": SERVICE_TOKEN,
            "REGISTRY_DATABASE": str(registry),
            "BUNDLE_STORE_BASE": ws.store_uri,
            "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
            "GATEWAY_RATE_LIMIT_RPS": RATE_LIMIT_RPS,
            "GATEWAY_RATE_LIMIT_BURST": str(burst),
        })
        services.append(gateway)
        async with httpx.AsyncClient(base_url=gateway.url, timeout=60, trust_env=False) as client:
            for runner in runners:
                await warmup(client, runner.url, content_hash.removeprefix("sha256:"))
            # Unkeyed POSTs, unlike the load test's: the gateway may not retry them, so the soak shows every
            # call the runner hop loses (docs/operations.md, "Soak notes").
            plan = build_plan(total, await install_tenants(client, ADMIN_TOKEN, content_hash), keyed_posts=False)
            before = sum([await ok_invocations(client, r.url) for r in runners])
            pids = {"gateway": gateway.process.pid, "runner-a": runners[0].process.pid,
                    "runner-b": runners[1].process.pid, "load generator": os.getpid()}
            start = {name: (pid, sample_process(pid)) for name, pid in pids.items()}
            log(f"soak: {total} calls, concurrency {CONCURRENCY} (+{RAW_SOCKETS} raw sockets)")
            with trio.fail_after(LOAD_BUDGET_S):
                outcome = await drive(plan, gateway.url, concurrency=CONCURRENCY, raw_sockets=RAW_SOCKETS)
            end = sample_all(pids)
            per_runner = [await ok_invocations(client, r.url) for r in runners]
            audit = await audit_statuses(client, ADMIN_TOKEN, registry)
    finally:
        for service in reversed(services):
            await service.stop()

    problems = check(plan, outcome, invocations=sum(per_runner) - before, audit=audit)
    latencies = outcome.latencies()
    print(summary(plan, outcome))
    print(process_table(start, end))
    print(f"  guest runs per runner: {per_runner}; rate-limit burst {plan.burst}", flush=True)
    for line in problems:
        print(f"  problem: {line}")
    ws.report.add(Row(
        "soak",
        f"{total} mixed calls via the gateway to 2 runners, concurrency {CONCURRENCY} (+{RAW_SOCKETS} raw "
        f"sockets): calls/s, p50 / p99",
        f"{total / outcome.seconds:.0f} calls/s in {outcome.seconds:.1f} s",
        f"p50 {ms(percentile(latencies, 50))} / p99 {ms(percentile(latencies, 99))}",
        f"{sum(a.problem is not None for a in outcome.answers.values())} lost or mismatched"
        + (f", {len(problems)} problems" if problems else ""),
        "0 lost or mismatched",
        not problems,
    ))
