"""The whole system: the gateway in front of two real runners, a real toolchain-built bundle, the operator flow
through ``extctl``, and a client calling ``/api/ext/...``."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

import sealing
from gateway_quart import Settings as GatewaySettings
from gateway_quart import create_app
from runner_trio import Settings
from tests.gateway._helpers import start_server
from tests.runner.http.conftest import TOKEN, Shared, stage_sample, start_runner

# Whole systems: the first call compiles the 12 MB JS sample (seconds alone, far longer on a loaded 2-core
# machine), so these run past the default per-test timeout and give the gateway a long deadline.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
FIRST_CALL_TIMEOUT_MS = 120_000

ADMIN = "admin-token-system-test-0123456789"
SECRET = "system-test-secret-value-42"


async def extctl(*args: str, env: dict[str, str], stdin: bytes = b"") -> str:
    with trio.fail_after(60):
        proc = await trio.run_process([sys.executable, "-m", "extctl", *args], env=env, stdin=stdin,
                                      capture_stdout=True, capture_stderr=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    return str(proc.stdout.decode().strip())


async def test_install_flow_and_calls_through_gateway_with_failover(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared, tmp_path: Path
) -> None:
    import os

    private, public = sealing.generate_keypair()
    first = await start_runner(nursery, runner_settings(secrets_private_key=private), shared)
    second = await start_runner(
        nursery, runner_settings(secrets_private_key=private, var_dir=tmp_path / "var2"), shared
    )
    gateway_settings = GatewaySettings(
        runner_base_urls=(first.url, second.url),
        runner_service_token=TOKEN,
        registry_database=str(tmp_path / "registry.sqlite3"),
        bundle_store_base=first.settings.resolved_store_base,
        admin_token=ADMIN,
        runner_secrets_public_key=public,
        timeout_ms=FIRST_CALL_TIMEOUT_MS,
    )
    gateway = await start_server(nursery, create_app(gateway_settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXTCTL_")}
    env |= {"EXTCTL_GATEWAY": gateway.url, "EXTCTL_ADMIN_TOKEN": ADMIN}

    # The operator's flow, by the CLI.
    bundle = tmp_path / "kitchen.tar.zst"
    digest = await extctl("pack", str(stage_sample("js-kitchen-sink", shared.work)), "--out", str(bundle), env=env)
    assert await extctl("publish", str(bundle), "--store", first.settings.resolved_store_base, env=env) == digest
    registered = json.loads(await extctl("register", digest, "--extension-id", "kitchen", env=env))
    assert "kitchen" in json.dumps(registered)
    await extctl("create-tenant", "Acme", "--id", "acme", env=env)
    user = json.loads(await extctl("create-user", "--tenant", "acme", "--role", "member", "ops@acme.test", env=env))
    token = await extctl("create-token", user["id"], env=env)
    await extctl("install", "--tenant", "acme", "kitchen", "--grant", "cap:secrets.get", "--grant", "cap:storage.kv",
                 "--config", "colour=teal", env=env)
    await extctl("set-secrets", "--tenant", "acme", "kitchen", "--file", "-", env=env,
                 stdin=json.dumps({"api_key": SECRET}).encode())
    stored = await trio.to_thread.run_sync(
        lambda: b"".join(path.read_bytes() for path in tmp_path.glob("registry.sqlite3*"))
    )
    assert SECRET.encode() not in stored, "the registry never holds a secret in plaintext"
    with sqlite3.connect(tmp_path / "registry.sqlite3") as db:
        tables = [row[0] for row in db.execute("select name from sqlite_master where type='table'")]
    assert tables, "the registry is a real SQLite database"

    async with httpx.AsyncClient(base_url=gateway.url, timeout=FIRST_CALL_TIMEOUT_MS / 1000 + 30,
                                 headers={"authorization": f"Bearer {token}"}) as client:
        echo = await client.post("/api/ext/kitchen/echo?x=1", content=b"ping",
                                 headers={"cookie": "a=b", "x-request-id": "req-system-1",
                                          "content-type": "text/plain", "x-forbidden": "dropped"})
        assert echo.status_code == 200, echo.text
        assert echo.headers["content-type"] == "application/json", "the guest's own content-type is kept"
        assert echo.headers["x-request-id"] == "req-system-1"
        seen: dict[str, Any] = echo.json()
        assert seen["url"] == "/echo?x=1"
        assert seen["bodyLength"] == 4
        assert seen["headers"]["x-request-id"] == "req-system-1"
        assert "authorization" not in seen["headers"]
        assert "cookie" not in seen["headers"]
        assert "x-forbidden" not in seen["headers"]

        secret = await client.get("/api/ext/kitchen/secrets", params={"key": "api_key"})
        assert secret.json() == {"key": "api_key", "value": SECRET}
        put = await client.post("/api/ext/kitchen/storage",
                                json={"op": "put", "namespace": "n", "key": "k", "value": "v"})
        assert put.json()["revision"] == 1
        denied = await client.post("/api/ext/kitchen/http", json={"url": "http://127.0.0.1:1/"})
        assert denied.json() == {"error": "not-allowed"}, "cap:http.fetch was not granted to this install"
        missing = await client.get("/api/ext/kitchen/no/such/endpoint")
        assert missing.status_code == 404

        # Stop the first runner: calls keep working through the second.
        first.shutdown.set()
        await first.client.aclose()
        await trio.sleep(0.5)
        for _ in range(4):
            again = await client.get("/api/ext/kitchen/context")
            assert again.status_code == 200, again.text
            assert again.json()["tenantId"] == "acme"
    await second.client.aclose()
    second.shutdown.set()
    await gateway.close()
