"""Part of benchmark ``scale``: throughput through one gateway in front of 1, 2 and 3 runner processes (and two
gateways in front of 3), the fleet shape of docs/deployment.md on one machine.

Three runners (warm cache, py-hello) and three gateway processes over one SQLite registry (the extension is
registered and installed once, through the first): gateway A knows runner 1, B runners 1-2, C runners 1-3
(content-hash affinity off: round robin, so every runner gets calls). A closed loop of ``CLIENTS`` clients calls
``GET /api/ext/hello/hello`` through one gateway per slice, then alternates clients between two gateways that
both know all three runners. Slices alternate. On a 2-core machine the gateways and the load generator share the
cores with the runners, so the figure says how far one machine is from needing more, not what a fleet of
machines would do.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from ._common import SERVICE_TOKEN, Row, Workspace, log, pick
from ._load import LoadResult, Target, closed_loop, summarize
from ._procs import Service, start_runner, start_service, warmup

CLIENTS = 8
ADMIN_TOKEN = secrets.token_urlsafe(24)
EXTENSION = "hello"
TENANT = "fleet"


async def _admin(client: httpx.AsyncClient, url: str, path: str, body: dict[str, Any]) -> Any:
    response = await client.post(f"{url}{path}", json=body, headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    if response.status_code >= 300:
        raise RuntimeError(f"admin {path}: HTTP {response.status_code}: {response.text[:300]}")
    return response.json()


async def run(ws: Workspace) -> None:
    py_hello = await ws.publish_sample("py-hello")
    registry = str(ws.fresh_dir("fleet-registry") / "registry.sqlite3")
    runners: list[Service] = []
    gateways: list[Service] = []
    try:
        for _ in range(3):
            runners.append(await start_runner(ws))
        for count in (1, 2, 3, 3):
            gateways.append(await start_service(ws, "gateway", {
                "GATEWAY_BIND": "127.0.0.1:0",
                "RUNNER_BASE_URL": ",".join(r.url for r in runners[:count]),
                "RUNNER_SERVICE_TOKEN": SERVICE_TOKEN,
                "REGISTRY_DATABASE": registry,
                "BUNDLE_STORE_BASE": ws.store_uri,
                "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
                "GATEWAY_RATE_LIMIT_RPS": "100000",
                "GATEWAY_RATE_LIMIT_BURST": "100000",
            }, name=f"gateway-{len(gateways) + 1}"))
        async with httpx.AsyncClient(timeout=60) as client:
            for runner in runners:
                await warmup(client, runner.url, py_hello)
            first = gateways[0].url
            await _admin(client, first, "/api/v1/extensions",
                         {"content_hash": f"sha256:{py_hello}", "extension_id": EXTENSION})
            await _admin(client, first, "/api/v1/tenants", {"id": TENANT, "name": "Fleet"})
            user = await _admin(client, first, f"/api/v1/tenants/{TENANT}/users",
                                {"email": "fleet@example.com", "name": "Fleet", "roles": ["member"]})
            token = (await _admin(client, first, f"/api/v1/users/{user['id']}/tokens", {"name": "bench"}))["token"]
            await _admin(client, first, f"/api/v1/tenants/{TENANT}/installs", {"extension_id": EXTENSION})

        def target(gateway: Service) -> Target:
            return Target(gateway.url, f"/api/ext/{EXTENSION}/hello?name=fleet", None,
                          {"authorization": f"Bearer {token}"}, method="GET", expect=b'"greeting"')

        layouts = {
            "1 gateway, 1 runner": [target(gateways[0])],
            "1 gateway, 2 runners": [target(gateways[1])],
            "1 gateway, 3 runners": [target(gateways[2])],
            "2 gateways, 3 runners": [target(gateways[2]), target(gateways[3])],
        }
        slice_s, rounds = pick(ws.quick, 2.0, 4.0), pick(ws.quick, 2, 3)
        for chosen in layouts.values():
            await closed_loop(chosen, concurrency=CLIENTS, duration=0.5)
        slices: dict[str, list[LoadResult]] = {name: [] for name in layouts}
        for i in range(rounds):
            for name in list(layouts) if i % 2 == 0 else list(reversed(layouts)):
                result = await closed_loop(layouts[name], concurrency=CLIENTS, duration=slice_s)
                if result.errors:
                    raise RuntimeError(f"fleet, {name}: {result.errors} failed, first: {result.first_error}")
                slices[name].append(result)
                log(f"fleet, {name}: {result.rps:.0f} req/s")
    finally:
        for service in gateways + runners:
            await service.stop()

    base, _ = summarize(slices["1 gateway, 1 runner"])
    for name in list(layouts)[1:]:
        rps, merged = summarize(slices[name])
        ws.report.add(Row(
            "scale",
            f"py-hello through the gateway, {CLIENTS} clients, req/s (p50 {merged.p50 * 1e3:.1f} ms)",
            f"{name} {rps:.0f} req/s",
            f"1 gateway, 1 runner {base:.0f} req/s",
            f"{rps / base:.2f}×",
            "",
            None,
        ))
