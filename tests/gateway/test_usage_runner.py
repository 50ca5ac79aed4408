"""Usage end to end: the gateway in front of a real runner that measures each invocation (``usage`` in its
answers). The gateway's billing totals match the runner's own Prometheus counters for a known workload, the
least-privilege report names a grant its extension never used, and a tenant over a budget on what the runner
measured gets ``quota_exceeded`` while another tenant is unaffected.

The guests are WAT components (fast to compile): ``caps`` calls every host function once per call (storage
four times, secrets twice, http once — refused by the empty egress allowlist, counted all the same), ``echo``
calls none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from contract import USAGE_FIELDS
from gateway_quart import Settings as GatewaySettings
from gateway_quart import create_app
from runner_trio import Settings
from tests.guests.wat import load_wat
from tests.runner.http.conftest import (  # noqa: F401 - runner_settings and shared are fixtures
    TOKEN,
    RunnerHandle,
    Shared,
    bundle_dir,
    runner_settings,
    shared,
    start_runner,
)

from ._helpers import start_server

ADMIN = "admin-token-usage-e2e-0123456789"
CAPS_CALLS = 8
ECHO_CALLS = 4


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one series of the Prometheus exposition (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
            return float(match.group(2))
    return 0.0


async def _publish(runner: RunnerHandle, name: str, capabilities: list[str]) -> str:
    src = bundle_dir(runner.shared.work, f"usage-e2e-{name}", load_wat(name), capabilities=capabilities)
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["api"] = {"endpoints": [{"method": "GET", "path": "/run", "handler": "run"}]}
    (src / "manifest.json").write_text(json.dumps(manifest))
    return await runner.publish_dir(src)


class _Admin:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def __call__(self, method: str, path: str, body: Any = None, *, expect: int = 200) -> Any:
        resp = await self.client.request(method, path, json=body, headers={"authorization": f"Bearer {ADMIN}"})
        assert resp.status_code == expect, resp.text
        return resp.json() if resp.content else None

    async def tenant(self, tenant_id: str) -> dict[str, str]:
        await self("POST", "/api/v1/tenants", {"id": tenant_id, "name": tenant_id}, expect=201)
        user = await self("POST", f"/api/v1/tenants/{tenant_id}/users",
                          {"email": f"ops@{tenant_id}.test", "roles": ["admin"]}, expect=201)
        token = await self("POST", f"/api/v1/users/{user['id']}/tokens", {"name": "t"}, expect=201)
        return {"authorization": f"Bearer {token['token']}"}


async def test_billing_matches_the_runners_counters_and_budgets_use_its_measurements(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared, tmp_path: Path,  # noqa: F811
) -> None:
    runner = await start_runner(nursery, runner_settings(), shared)
    caps = await _publish(runner, "caps", ["cap:http.fetch", "cap:storage.kv", "cap:secrets.get"])
    echo = await _publish(runner, "echo", ["cap:storage.kv"])
    gateway = await start_server(nursery, create_app(GatewaySettings(
        runner_base_urls=(runner.url,), runner_service_token=TOKEN, registry_database=str(tmp_path / "r.sqlite3"),
        bundle_store_base=runner.settings.resolved_store_base, admin_token=ADMIN, timeout_ms=60_000)))
    async with httpx.AsyncClient(base_url=gateway.url, timeout=90) as client:
        admin = _Admin(client)
        await admin("POST", "/api/v1/extensions", {"content_hash": caps, "extension_id": "caps"}, expect=201)
        await admin("POST", "/api/v1/extensions", {"content_hash": echo, "extension_id": "echo"}, expect=201)
        acme, globex = await admin.tenant("acme"), await admin.tenant("globex")
        await admin("POST", "/api/v1/tenants/acme/installs", {
            "extension_id": "caps", "granted_capabilities": ["cap:http.fetch", "cap:storage.kv", "cap:secrets.get"]},
            expect=201)
        for tenant in ("acme", "globex"):
            await admin("POST", f"/api/v1/tenants/{tenant}/installs",
                        {"extension_id": "echo", "granted_capabilities": ["cap:storage.kv"]}, expect=201)

        for _ in range(CAPS_CALLS):
            resp = await client.get("/api/ext/caps/run", headers=acme)
            assert resp.status_code == 200, resp.text
        for _ in range(ECHO_CALLS):
            assert (await client.get("/api/ext/echo/run", headers=acme)).status_code == 200

        since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        report = (await client.get("/api/v1/usage", params={"from": since}, headers=acme)).json()
        metrics = (await runner.client.get("/metrics")).text
        for extension, calls in (("caps", CAPS_CALLS), ("echo", ECHO_CALLS)):
            billed = report["extensions"][extension]
            assert (billed["invocations"], billed["errors"]) == (calls, 0)
            labels = {"tenant": "acme", "extension": extension}
            for field in USAGE_FIELDS:
                measured = metric(metrics, f"runner_usage_{field}_total", **labels)
                assert billed[field] == pytest.approx(measured, rel=0.05, abs=1e-3), (extension, field)
            for capability, count in billed["calls"].items():
                assert count == metric(metrics, "runner_usage_calls_total", **labels, capability=capability)
        caps_billed = report["extensions"]["caps"]
        assert caps_billed["guest_cpu_ms"] > 0
        assert caps_billed["storage_ops"] == 4 * CAPS_CALLS  # get, put, delete, list-entries per call
        assert (caps_billed["calls"]["storage"], caps_billed["calls"]["http"]) == (4 * CAPS_CALLS, CAPS_CALLS)
        assert caps_billed["egress_requests"] == 0, "the fetch was refused: no egress"
        assert report["extensions"]["echo"]["calls"].get("storage", 0) == 0

        privileges = (await client.get("/api/v1/tenants/acme/installs/echo/privileges", headers=acme)).json()
        assert privileges["unused"] == ["cap:storage.kv"]
        privileges = (await client.get("/api/v1/tenants/acme/installs/caps/privileges", headers=acme)).json()
        assert privileges["unused"] == []
        assert {row["capability"]: row["calls"] for row in privileges["capabilities"]} == {
            "cap:http.fetch": CAPS_CALLS, "cap:secrets.get": 2 * CAPS_CALLS, "cap:storage.kv": 4 * CAPS_CALLS}

        # A budget on what the runner measured: acme has used its storage operations for the day.
        await admin("PUT", "/api/v1/tenants/acme/budgets",
                    {"budgets": [{"name": "storage_ops", "period": "day", "limit": 4 * CAPS_CALLS}]})
        await admin("PUT", "/api/v1/tenants/globex/budgets",
                    {"budgets": [{"name": "storage_ops", "period": "day", "limit": 4 * CAPS_CALLS}]})
        refused = await client.get("/api/ext/caps/run", headers=acme)
        assert refused.status_code == 429
        assert {k: refused.json()[k] for k in ("error", "budget", "used", "limit")} == {
            "error": "quota_exceeded", "budget": "storage_ops", "used": 4 * CAPS_CALLS, "limit": 4 * CAPS_CALLS}
        assert (await client.get("/api/ext/echo/run", headers=globex)).status_code == 200
        after = (await client.get("/api/v1/usage", params={"from": since}, headers=acme)).json()
        assert after["totals"]["invocations"] == CAPS_CALLS + ECHO_CALLS, "a refused call is not billed"
    await runner.client.aclose()
    runner.shutdown.set()
    await gateway.close()
