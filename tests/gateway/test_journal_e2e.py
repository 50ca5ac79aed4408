"""The journal end to end: the gateway in front of a real runner sharing its journal keys and store.

A call through ``/api/ext`` with the install's policy ``all`` is recorded by the runner, indexed by the gateway
from the runner's answer, downloaded through the admin API (decrypted with ``GATEWAY_JOURNAL_KEYS``), replayed
identically on the runner, and checked against changed bundles: an upgrade check to a bundle that calls another
host function fails (``calls_differ`` at that call) and the tenant's upgrade gate refuses the upgrade; one to a
bundle that behaves the same passes and lets it through.

The guest is the journal tests' hand-written component (``tests/runner/journal/clocklog.wat``: reads the wall
clock, logs twice), so no toolchain-built sample is compiled there; the secret test runs the JS sample (slow).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

import journal
import sealing
from gateway_quart import Settings as GatewaySettings
from gateway_quart import create_app
from runner_trio import Settings
from tests.gateway._helpers import start_server
from tests.runner.capabilities._servers import Req, Resp
from tests.runner.capabilities._servers import start_server as start_upstream
from tests.runner.http.conftest import TOKEN, RunnerHandle, Shared, runner_settings, shared, start_runner  # noqa: F401 - fixtures
from tests.runner.journal.wat import clocklog

ADMIN = "admin-token-journal-e2e-0123456789"


@dataclass
class Stack:
    gateway: httpx.AsyncClient
    runner: RunnerHandle
    admin: dict[str, str]
    tenant_admin: dict[str, str]
    member: dict[str, str]
    hashes: dict[str, str]


def _bundle(root: Path, name: str, component: bytes, version: str) -> Path:
    src = root / f"src-{name}"
    src.mkdir(parents=True, exist_ok=True)
    manifest = {"name": "com.example.clocklog", "publisher": "tests", "version": version, "runtime": "wasm-js@1",
                "entry": "entry.wasm", "capabilities": ["cap:log.emit"],
                "api": {"endpoints": [{"method": "GET", "path": "/clock", "handler": "handler"}]}}
    (src / "manifest.json").write_text(json.dumps(manifest))
    (src / "entry.wasm").write_bytes(component)
    return src


@pytest.fixture
async def stack(nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared,  # noqa: F811
                tmp_path: Path) -> AsyncIterator[Stack]:
    keys = journal.JournalKeyring.generate("e2e")
    runner = await start_runner(nursery, runner_settings(journal_keys=keys), shared)
    settings = GatewaySettings(
        runner_base_urls=(runner.url,), runner_service_token=TOKEN, admin_token=ADMIN,
        registry_database=str(tmp_path / "registry.sqlite3"), bundle_store_base=runner.settings.resolved_store_base,
        journal_keys=journal.JournalKeyring.parse(keys), timeout_ms=60_000,
    )
    server = await start_server(nursery, create_app(settings))
    admin = {"authorization": f"Bearer {ADMIN}"}
    client = httpx.AsyncClient(base_url=server.url, timeout=90)
    hashes = {
        "v1": await runner.publish_dir(_bundle(tmp_path, "v1", clocklog(), "1.0.0")),
        "warn": await runner.publish_dir(_bundle(tmp_path, "warn", clocklog("log-warn", "two"), "2.0.0")),
        "same": await runner.publish_dir(_bundle(tmp_path, "same", clocklog(), "1.0.1")),
    }
    for content_hash in hashes.values():
        resp = await client.post("/api/v1/extensions", json={"content_hash": content_hash, "extension_id": "clocklog"},
                                 headers=admin)
        assert resp.is_success, resp.text
    assert (await client.post("/api/v1/tenants", json={"id": "acme", "name": "Acme"}, headers=admin)).is_success
    tokens = []
    for email, role in (("admin@acme.test", "admin"), ("member@acme.test", "member")):
        user = (await client.post("/api/v1/tenants/acme/users", json={"email": email, "roles": [role]},
                                  headers=admin)).json()
        tokens.append((await client.post(f"/api/v1/users/{user['id']}/tokens", json={}, headers=admin)).json()["token"])
    install = await client.post("/api/v1/tenants/acme/installs",
                                json={"extension_id": "clocklog", "content_hash": hashes["v1"]}, headers=admin)
    assert install.status_code == 201, install.text
    try:
        yield Stack(client, runner, admin, {"authorization": f"Bearer {tokens[0]}"},
                    {"authorization": f"Bearer {tokens[1]}"}, hashes)
    finally:
        await client.aclose()
        await runner.client.aclose()
        with trio.fail_after(10):
            await server.close()
        runner.shutdown.set()


async def _entry(stack: Stack, entry_id: str) -> dict[str, Any]:
    """The entry through the admin API, once the runner's background writer has stored it."""
    with trio.fail_after(20):
        while True:
            resp = await stack.gateway.get(f"/api/v1/tenants/acme/journal/{entry_id}", headers=stack.tenant_admin)
            if resp.status_code != 404:
                assert resp.status_code == 200, resp.text
                doc: dict[str, Any] = resp.json()
                return doc
            await trio.sleep(0.05)


async def test_record_download_replay_and_gate_an_upgrade(stack: Stack) -> None:
    gw, tenant_admin = stack.gateway, stack.tenant_admin
    resp = await gw.put("/api/v1/tenants/acme/installs/clocklog/journal", json={"policy": "all"},
                        headers=tenant_admin)
    assert resp.status_code == 200, resp.text
    called = await gw.get("/api/ext/clocklog/clock", headers={**stack.member, "x-request-id": "req-e2e"})
    assert called.status_code == 200, called.text

    listed = (await gw.get("/api/v1/tenants/acme/journal", headers=tenant_admin)).json()["entries"]
    assert len(listed) == 1, "the runner's answer named the entry and the gateway indexed it"
    entry = listed[0]
    assert (entry["extension_id"], entry["content_hash"], entry["outcome"], entry["status"], entry["request_id"]) == (
        "clocklog", stack.hashes["v1"], "ok", 200, "req-e2e")
    doc = await _entry(stack, entry["id"])
    assert doc["format"] == journal.JOURNAL_FORMAT
    assert [c["fn"] for c in doc["calls"]] == ["wasi:clocks/wall-clock#now", "alga:extension/logging#log-info",
                                               "alga:extension/logging#log-info"]
    assert doc["request"]["secret_envelope"] is None

    replayed = await gw.post(f"/api/v1/tenants/acme/journal/{entry['id']}/replay", headers=tenant_admin)
    assert replayed.status_code == 200, replayed.text
    assert (replayed.json()["verdict"], replayed.json()["calls_replayed"]) == ("identical", 3)

    changed = await gw.post(f"/api/v1/tenants/acme/journal/{entry['id']}/replay",
                            json={"content_hash": stack.hashes["warn"]}, headers=tenant_admin)
    assert changed.json()["verdict"] == "calls_differ"
    assert changed.json()["divergence"]["index"] == 2, "the third call is the one that changed"

    await gw.put("/api/v1/tenants/acme/settings", json={"require_upgrade_check": True}, headers=tenant_admin)
    check = (await gw.post("/api/v1/tenants/acme/installs/clocklog/upgrade-check",
                           json={"to": stack.hashes["warn"]}, headers=tenant_admin)).json()
    assert (check["passed"], check["summary"]["calls_differ"], check["summary"]["total"]) == (False, 1, 1)
    refused = await gw.post("/api/v1/tenants/acme/installs/clocklog/upgrade",
                            json={"content_hash": stack.hashes["warn"]}, headers=tenant_admin)
    assert (refused.status_code, refused.json()["error"]) == (409, "upgrade_check_required")

    check = (await gw.post("/api/v1/tenants/acme/installs/clocklog/upgrade-check",
                           json={"to": stack.hashes["same"]}, headers=tenant_admin)).json()
    assert (check["passed"], check["summary"]["identical"]) == (True, 1), check
    upgraded = await gw.post("/api/v1/tenants/acme/installs/clocklog/upgrade",
                             json={"content_hash": stack.hashes["same"]}, headers=tenant_admin)
    assert upgraded.status_code == 200, upgraded.text
    assert upgraded.json()["content_hash"] == stack.hashes["same"]


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_js_guest_secret_never_reaches_a_download(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared, tmp_path: Path  # noqa: F811
) -> None:
    """The JS guest reads a secret, fetches with it, writes storage, reads the clock and randomness; the entry
    the tenant admin downloads through the gateway (and its sealed object) holds the secret's name, never its
    value, and replays identically."""
    secret = "gw-e2e-secret-value-5b1d9c"
    upstream = await start_upstream(nursery, _upstream(secret))
    keys = journal.JournalKeyring.generate("e2e")
    private, public = sealing.generate_keypair()
    runner = await start_runner(nursery, runner_settings(journal_keys=keys, secrets_private_key=private,
                                                         egress_allowlist=(f"127.0.0.1:{upstream.port}",)), shared)
    settings = GatewaySettings(
        runner_base_urls=(runner.url,), runner_service_token=TOKEN, admin_token=ADMIN,
        registry_database=str(tmp_path / "registry.sqlite3"), bundle_store_base=runner.settings.resolved_store_base,
        journal_keys=journal.JournalKeyring.parse(keys), runner_secrets_public_key=public, timeout_ms=300_000,
    )
    server = await start_server(nursery, create_app(settings))
    admin = {"authorization": f"Bearer {ADMIN}"}
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=330, headers=admin) as gw:
            digest = await runner.publish_sample("js-kitchen-sink")
            assert (await gw.post("/api/v1/extensions", json={"content_hash": digest,
                                                              "extension_id": "kitchen"})).is_success
            await gw.post("/api/v1/tenants", json={"id": "acme", "name": "Acme"})
            user = (await gw.post("/api/v1/tenants/acme/users", json={"email": "a@acme.test",
                                                                       "roles": ["admin"]})).json()
            token = (await gw.post(f"/api/v1/users/{user['id']}/tokens", json={})).json()["token"]
            tenant_admin = {"authorization": f"Bearer {token}"}
            grants = ["cap:secrets.get", "cap:http.fetch", "cap:storage.kv"]
            assert (await gw.post("/api/v1/tenants/acme/installs", json={
                "extension_id": "kitchen", "granted_capabilities": grants})).status_code == 201
            assert (await gw.put("/api/v1/tenants/acme/installs/kitchen/secrets",
                                 json={"secrets": {"api_key": secret}})).is_success
            assert (await gw.put("/api/v1/tenants/acme/installs/kitchen/journal", json={"policy": "all"},
                                 headers=tenant_admin)).is_success

            called = await gw.post("/api/ext/kitchen/journal-demo", json={"url": f"{upstream.url}/data"},
                                   headers=tenant_admin)
            assert called.status_code == 200, called.text
            assert called.json()["secret"] == secret, "the guest did read it"
            assert json.loads(called.json()["fetched"]["bodyText"])["auth_ok"] is True
            entries = (await gw.get("/api/v1/tenants/acme/journal", headers=tenant_admin)).json()["entries"]
            assert len(entries) == 1
            doc = await _entry(Stack(gw, runner, admin, tenant_admin, tenant_admin, {}), entries[0]["id"])
            downloaded = json.dumps(doc, ensure_ascii=False)
            assert secret not in downloaded
            assert doc["secrets_read"] == ["api_key"]
            assert "«secret:api_key»" in downloaded
            functions = {c["fn"] for c in doc["calls"]}
            assert {"alga:extension/secrets#get", "alga:extension/http#fetch",
                    "wasi:clocks/wall-clock#now"} <= functions
            objects = [p.read_bytes() for p in (shared.store_dir / "journal").rglob("*.jrnl")]
            assert objects
            assert all(secret.encode() not in blob for blob in objects)

            seen_upstream = len(upstream.seen)
            replayed = await gw.post(f"/api/v1/tenants/acme/journal/{entries[0]['id']}/replay", headers=tenant_admin)
            assert replayed.status_code == 200, replayed.text
            assert replayed.json()["verdict"] == "identical", replayed.json()
            assert len(upstream.seen) == seen_upstream, "a replay touches nothing real"
    finally:
        await runner.client.aclose()
        with trio.fail_after(10):
            await server.close()
        runner.shutdown.set()


def _upstream(secret: str) -> Any:
    async def handler(req: Req) -> Resp:
        return Resp.json(200, {"path": req.path, "auth_ok": req.header("authorization") == f"Bearer {secret}"})

    return handler
