"""Debug events end to end: a real invocation's guest logs, stdout and stderr reach Redis with their full context,
``extctl tail`` prints them through the gateway, another tenant cannot read them, and no secret value ever
appears in an event or a log line."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import trio

import sealing
from gateway_quart import Settings as GatewaySettings
from gateway_quart import create_app
from runner_trio import Settings
from tests._redis import RedisServer
from tests.gateway._helpers import start_server
from tests.runner.http.conftest import TOKEN, Shared, stage_sample, start_runner

# Whole systems: the first call compiles the 12 MB JS sample (seconds alone, far longer on a loaded 2-core
# machine), so these run past the default per-test timeout and give the gateway a long deadline.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
FIRST_CALL_TIMEOUT_MS = 120_000

ADMIN = "admin-token-debug-test-0123456789"
SECRET = "debug-test-secret-do-not-leak-991"


async def test_guest_output_reaches_the_tail_with_context_and_secrets_never_leak(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared, tmp_path: Path,
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    prefix = f"dbg-{os.getpid()}:"
    private, public = sealing.generate_keypair()
    runner = await start_runner(
        nursery,
        runner_settings(secrets_private_key=private, debug_redis_url=redis_server.url, debug_stream_prefix=prefix),
        shared,
    )
    gateway = await start_server(nursery, create_app(GatewaySettings(
        runner_base_urls=(runner.url,), runner_service_token=TOKEN,
        registry_database=str(tmp_path / "registry.sqlite3"), bundle_store_base=runner.settings.resolved_store_base,
        admin_token=ADMIN, runner_secrets_public_key=public, debug_redis_url=redis_server.url,
        debug_stream_prefix=prefix, timeout_ms=FIRST_CALL_TIMEOUT_MS,
    )))
    digest = await runner.publish_dir(stage_sample("js-kitchen-sink", shared.work))
    admin = httpx.AsyncClient(base_url=f"{gateway.url}/api/v1", headers={"authorization": f"Bearer {ADMIN}"})
    tokens: dict[str, str] = {}
    async with admin:
        assert (await admin.post("/extensions", json={"content_hash": digest, "extension_id": "sink"})).is_success
        for tenant in ("acme", "globex"):
            assert (await admin.post("/tenants", json={"id": tenant, "name": tenant})).is_success
            user = (await admin.post(f"/tenants/{tenant}/users",
                                     json={"email": f"dev@{tenant}.test", "roles": ["member"]})).json()
            tokens[tenant] = (await admin.post(f"/users/{user['id']}/tokens", json={})).json()["token"]
        installed = await admin.post("/tenants/acme/installs",
                                     json={"extension_id": "sink", "granted_capabilities": ["cap:secrets.get"]})
        assert installed.is_success, installed.text
        secrets_set = await admin.put("/tenants/acme/installs/sink/secrets", json={"secrets": {"api_key": SECRET}})
        assert secrets_set.is_success, secrets_set.text

    async with httpx.AsyncClient(base_url=gateway.url, timeout=FIRST_CALL_TIMEOUT_MS / 1000 + 30,
                                 headers={"authorization": f"Bearer {tokens['acme']}"}) as client:
        logged = await client.get("/api/ext/sink/log", params={"msg": "hello-debug"},
                                  headers={"x-request-id": "req-debug-1"})
        assert logged.status_code == 204, logged.text
        secret = await client.get("/api/ext/sink/secrets", params={"key": "api_key"})
        assert secret.json()["value"] == SECRET

    # Straight from Redis: every kind of event, with the whole context, in the reference's field layout.
    r = redis.Redis.from_url(redis_server.url)
    key = f"{prefix}acme:sink"
    with trio.fail_after(10):
        while True:
            entries = await trio.to_thread.run_sync(r.xrange, key)
            mine = [{k.decode(): v.decode() for k, v in fields.items()} for _id, fields in entries
                    if fields.get(b"request") == b"req-debug-1"]
            if len(mine) >= 5:
                break
            await trio.sleep(0.1)
    kinds = {(event["level"], event["stream"]) for event in mine}
    assert {("info", "log"), ("warn", "log"), ("error", "log")} <= kinds
    assert any(event["stream"] == "stdout" for event in mine)
    assert any(event["stream"] == "stderr" for event in mine), "stderr keeps its context (the reference loses it)"
    for event in mine:
        assert event["tenant"] == "acme"
        assert event["extension"] == "sink"
        assert event["content_hash"] == digest
        assert "hello-debug" in event["message"]
        assert list(event)[:3] == ["ts", "level", "stream"]

    # Through the gateway: extctl tail prints them; another tenant is refused.
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXTCTL_")}
    with trio.fail_after(60):
        tail = await trio.run_process(
            [sys.executable, "-m", "extctl", "tail", "--gateway", gateway.url, "--token", tokens["acme"], "sink",
             "--request-id", "req-debug-1", "--json", "--limit", "3"],
            env=env, capture_stdout=True, capture_stderr=True, check=False,
        )
    assert tail.returncode == 0, tail.stderr.decode()
    printed = [json.loads(line) for line in tail.stdout.decode().splitlines()]
    assert len(printed) == 3
    assert all(event["requestId"] == "req-debug-1" and event["tenantId"] == "acme" for event in printed)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as other:
        refused = await other.get("/api/ext-debug/stream", params={"extensionId": "sink", "tenantId": "acme"},
                                  headers={"authorization": f"Bearer {tokens['globex']}"})
    assert refused.status_code == 403, "another tenant's stream is refused (the reference allowed it)"

    # No secret value in any event of any stream, nor in any log line of this process.
    all_events: list[Any] = []
    for stream in await trio.to_thread.run_sync(lambda: list(r.scan_iter(f"{prefix}*"))):
        all_events += await trio.to_thread.run_sync(r.xrange, stream)
    assert SECRET.encode() not in repr(all_events).encode()
    assert SECRET not in caplog.text
    r.close()
    runner.shutdown.set()
    await runner.client.aclose()
    await gateway.close()
