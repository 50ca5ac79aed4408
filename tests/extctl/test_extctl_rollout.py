"""extctl's version commands against the real gateway app: install --version, upgrade (held for consent), diff,
consent, rollback, history."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio

from extctl._commands.dev import DevOptions, DevSession
from tests.gateway._helpers import manifest, publish

from .test_extctl_gateway import ADMIN_TOKEN, Stack, _error_line, run_main, stack  # noqa: F401 - the fixture


@pytest.fixture
def served(stack: Stack) -> Stack:  # noqa: F811 - the imported fixture, by its name
    """The gateway of ``test_extctl_gateway`` (SQLite registry, file store, a recording runner)."""
    return stack


async def _bundle(served: Stack, name: str, **overrides: Any) -> str:
    content_hash = await publish(served.store, served.tmp / name, manifest(**overrides))
    async with httpx.AsyncClient(base_url=served.url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        resp = await client.post("/api/v1/extensions", json={"content_hash": content_hash, "extension_id": "echo"})
        assert resp.status_code == 201, resp.text
    return content_hash


async def _tenant_admin_token(served: Stack) -> str:
    async with httpx.AsyncClient(base_url=served.url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        assert (await client.post("/api/v1/tenants", json={"id": "acme", "name": "Acme"})).status_code == 201
        user = (await client.post("/api/v1/tenants/acme/users",
                                  json={"email": "boss@example.com", "roles": ["admin"]})).json()
        token: str = (await client.post(f"/api/v1/users/{user['id']}/tokens", json={"name": "cli"})).json()["token"]
    return token


async def test_install_upgrade_consent_rollback_history_diff(served: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    v1 = await _bundle(served, "v1", version="1.0.0", egress=["api.example.com"])
    v2 = await _bundle(served, "v2", version="1.1.0", egress=["api.example.com", "hooks.example.net"])
    admin = ["--gateway", served.url, "--admin-token", ADMIN_TOKEN]
    boss = ["--gateway", served.url, "--admin-token", await _tenant_admin_token(served)]
    capsys.readouterr()

    assert await run_main("install", *admin, "--tenant", "acme", "echo", "--version", "1.0.0",
                          "--grant", "cap:http.fetch") == 0
    assert json.loads(capsys.readouterr().out)["content_hash"] == v1

    assert await run_main("diff", *boss, "echo", "--from", "1.0.0", "--to", v2) == 0
    diff = json.loads(capsys.readouterr().out)
    assert (diff["diff"]["requires_consent"], diff["diff"]["egress"]["added"]) == (True, ["hooks.example.net"])

    # The tenant admin's token names the tenant: no --tenant needed.
    assert await run_main("upgrade", *boss, "echo", "--version", "1.1.0", "--reason", "new webhooks") == 0
    out = capsys.readouterr()
    held = json.loads(out.out)
    assert (held["status"], held["install"]["version"], held["pending"]["content_hash"]) == (
        "pending_consent", "1.0.0", v2)
    assert out.err.startswith("pending_consent: ")
    assert "extctl consent echo --tenant acme" in out.err

    assert await run_main("consent", *boss, "echo", "--version", v2) == 0
    approved = json.loads(capsys.readouterr().out)
    assert (approved["version"], approved["pending"]) == ("1.1.0", None)

    assert await run_main("rollback", *admin, "echo", "--tenant", "acme", "--reason", "webhooks fail") == 0
    assert json.loads(capsys.readouterr().out)["content_hash"] == v1

    assert await run_main("history", *boss, "echo") == 0
    entries = json.loads(capsys.readouterr().out)["entries"]
    assert [(e["action"], e["to"]["version"]) for e in entries] == [
        ("rollback", "1.0.0"), ("consent", "1.1.0"), ("install", "1.0.0")]
    assert entries[0]["reason"] == "webhooks fail"

    # Refusals keep the gateway's code; the admin token names no tenant.
    assert await run_main("rollback", *admin, "echo", "--tenant", "acme") == 1
    _error_line(capsys.readouterr().err, "no_previous_version")
    assert await run_main("consent", *boss, "echo") == 1
    _error_line(capsys.readouterr().err, "no_pending_upgrade")
    assert await run_main("rollback", *admin, "echo") == 2
    assert "--tenant" in _error_line(capsys.readouterr().err, "usage")
    assert await run_main("upgrade", *boss, "echo", "--hash", "sha256:" + "1" * 64) == 1
    _error_line(capsys.readouterr().err, "version_not_found")


async def test_dev_approves_what_its_own_rebuild_asks_for_more(served: Stack) -> None:
    """``extctl dev`` re-installs each build in the author's own dev tenant: a build asking for a new egress host
    and capability is upgraded and consented to at once, not left pending."""
    first = await publish(served.store, served.tmp / "b1", manifest(version="0.1.0", capabilities=["cap:http.fetch"]))
    second = await publish(served.store, served.tmp / "b2", manifest(
        version="0.1.0", capabilities=["cap:http.fetch", "cap:storage.kv"], egress=["api.example.com"]))
    async with httpx.AsyncClient(base_url=served.url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        assert (await client.post("/api/v1/tenants", json={"id": "dev", "name": "Dev"})).status_code == 201
    session = DevSession(DevOptions(src=served.tmp, extension_id="echo", tenant="dev", gateway=served.url,
                                    admin_token=ADMIN_TOKEN, store=f"file://{served.store}", key=None))
    await trio.to_thread.run_sync(session._install, first, ["cap:http.fetch"])
    await trio.to_thread.run_sync(session._install, second, ["cap:http.fetch", "cap:storage.kv"])
    async with httpx.AsyncClient(base_url=served.url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        install = (await client.get("/api/v1/tenants/dev/installs/echo")).json()
        history = (await client.get("/api/v1/tenants/dev/installs/echo/history")).json()["entries"]
    assert (install["content_hash"], install["pending"]) == (second, None)
    assert install["granted_capabilities"] == ["cap:http.fetch", "cap:storage.kv"]
    assert [(e["action"], e["reason"]) for e in history] == [("consent", "extctl dev"), ("install", "")]
