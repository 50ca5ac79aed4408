"""SIGTERM to one of two runner processes under load through the gateway: every call is answered 200.

The draining runner finishes the calls it has started and answers the ones that arrive on its open
connections with ``503 draining``; the gateway sends those to the other runner, whatever their method (the
draining runner guarantees it did not start them), and once the runner has exited its refused connections
are retried the same way.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import trio

from gateway_quart import Settings as GatewaySettings
from gateway_quart import create_app
from runner_trio import Settings
from tests.gateway._helpers import start_server
from tests.guests.wat import load_wat
from tests.runner.http.conftest import TOKEN, Shared, bundle_dir, start_runner
from tests.runner.http.test_drain import runner_process

ADMIN = "admin-token-drain-test-0123456789"
CALLS = 120
CONCURRENCY = 8
GUEST_SLEEP_S = 0.3  # long enough that the runner has calls in flight when the signal comes
SIGTERM_AFTER = 16  # calls answered before the signal


async def _publish_sleep_with_endpoint(runner_settings: Callable[..., Settings], shared: Shared,
                                       nursery: trio.Nursery, tmp_path: Path) -> str:
    src = bundle_dir(tmp_path, "sleep-api", load_wat("sleep"))
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["api"] = {"endpoints": [{"method": "POST", "path": "/sleep", "handler": "sleep"}]}
    (src / "manifest.json").write_text(json.dumps(manifest))
    # An in-process runner only to publish and compile once into the shared cache the processes read.
    publisher = await start_runner(nursery, runner_settings(), shared)
    try:
        digest = await publisher.publish_dir(src)
        assert (await publisher.client.post("/v1/warmup", json={"content_hash": digest})).status_code == 200
    finally:
        await publisher.client.aclose()
        publisher.shutdown.set()
    return digest


async def test_sigterm_to_one_of_two_runners_under_load_loses_no_call(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway_quart.runner")
    digest = await _publish_sleep_with_endpoint(runner_settings, shared, nursery, tmp_path)
    async with runner_process(shared, tmp_path, "stopping") as stopping, \
            runner_process(shared, tmp_path, "staying") as staying:
        settings = replace(
            GatewaySettings(runner_base_urls=(stopping.url, staying.url), runner_service_token=TOKEN,
                            registry_database=str(tmp_path / "registry.sqlite3"),
                            bundle_store_base=shared.store_dir.resolve().as_uri(), admin_token=ADMIN),
            timeout_ms=20_000, rate_limit_rps=10_000.0, rate_limit_burst=10_000,
        )
        gateway = await start_server(nursery, create_app(settings))
        admin = {"authorization": f"Bearer {ADMIN}"}
        async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:
            async def admin_post(path: str, body: object) -> dict[str, str]:
                response = await client.post(path, json=body, headers=admin)
                assert response.status_code in {200, 201}, response.text
                result: dict[str, str] = response.json()
                return result

            await admin_post("/api/v1/extensions", {"content_hash": digest, "extension_id": "sleeper"})
            await admin_post("/api/v1/tenants", {"id": "acme", "name": "Acme"})
            user = await admin_post("/api/v1/tenants/acme/users",
                                    {"email": "ops@acme.test", "name": "Ops", "roles": ["member"]})
            token = (await admin_post(f"/api/v1/users/{user['id']}/tokens", {"name": "load"}))["token"]
            await admin_post("/api/v1/tenants/acme/installs", {"extension_id": "sleeper"})

            auth = {"authorization": f"Bearer {token}"}
            body = struct.pack("<Q", int(GUEST_SLEEP_S * 1e9))
            statuses: list[int] = []
            answered_enough = trio.Event()
            todo = iter(range(CALLS))
            stopped: dict[str, float] = {}

            async def worker() -> None:
                for _ in todo:
                    # A POST without an idempotency key: the gateway may move it to another runner only when
                    # it knows the first did not start it.
                    response = await client.post("/api/ext/sleeper/sleep", content=body, headers=auth)
                    statuses.append(response.status_code)
                    if len(statuses) >= SIGTERM_AFTER:
                        answered_enough.set()

            async def stop_one() -> None:
                await answered_enough.wait()
                returncode, took = await stopping.stop()
                stopped.update(returncode=returncode, took=took, answered=len(statuses))

            with trio.fail_after(90):
                async with trio.open_nursery() as load:
                    load.start_soon(stop_one)
                    for _ in range(CONCURRENCY):
                        load.start_soon(worker)

        assert len(statuses) == CALLS
        failed = [status for status in statuses if status != 200]
        assert failed == [], f"{len(failed)} of {CALLS} calls failed: {sorted(set(failed))}"
        assert stopped["returncode"] == 0
        assert stopped["took"] < 10, "the runner drained its calls in flight and exited"
        assert stopped["answered"] < CALLS, "the load went on after the runner had exited"
        retried = [r.getMessage() for r in caplog.records if "runner draining" in r.getMessage()]
        assert retried, "the gateway met the draining runner's 503 and retried elsewhere"
        log = stopping.log_path.read_text()
        assert "received SIGTERM: draining" in log
        assert "runner stopped" in log
        await gateway.close()
