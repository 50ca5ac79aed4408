"""``extctl journal policy|list|show``, ``extctl replay`` and ``extctl upgrade-check`` against the real gateway app
(Hypercorn on a free port, SQLite registry, file store) in front of the contract-speaking stand-in runner, whose
answers name journal entries and whose ``/v1/replay`` answers replay reports. Entries are sealed by the real
``journal.JournalWriter``. The CLI runs as ``extctl.main`` in a worker thread (the trio loop keeps serving)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

import journal
from bundles.store import FileStore
from extctl import main
from gateway_quart import Settings, create_app
from tests.gateway._helpers import FakeRunner, RunnerReply, manifest, publish, start_runner, start_server

ADMIN_TOKEN = "admin-token-extctl-journal-0123456789"
KEYS = journal.JournalKeyring.generate("k1")
ENTRY = "e" * 32


@dataclass
class Stack:
    url: str
    runner: FakeRunner
    v1: str
    v2: str
    tenant_token: str
    tmp: Path


@pytest.fixture
async def stack(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[Stack]:
    """Tenant ``acme`` (an admin user) with echo v1 installed, v2 registered, one recorded call indexed."""
    store = tmp_path / "store"
    store.mkdir()
    runner = FakeRunner(reply=lambda call: RunnerReply(body=b"{}", journal_entry=ENTRY))
    runner_server = await start_runner(nursery, runner)
    settings = Settings(runner_base_urls=(runner_server.url,), registry_database=str(tmp_path / "registry.sqlite3"),
                        bundle_store_base=f"file://{store}", admin_token=ADMIN_TOKEN, timeout_ms=5000,
                        journal_keys=journal.JournalKeyring.parse(KEYS))
    server = await start_server(nursery, create_app(settings))
    v1 = await publish(store, tmp_path / "v1", manifest())
    v2 = await publish(store, tmp_path / "v2", manifest(version="2.0.0"))
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=server.url, headers=admin) as client:
        for content_hash in (v1, v2):
            assert (await client.post("/api/v1/extensions", json={"content_hash": content_hash,
                                                                   "extension_id": "echo"})).is_success
        assert (await client.post("/api/v1/tenants", json={"id": "acme", "name": "Acme"})).status_code == 201
        user = (await client.post("/api/v1/tenants/acme/users",
                                  json={"email": "a@acme.test", "roles": ["admin"]})).json()
        token = (await client.post(f"/api/v1/users/{user['id']}/tokens", json={})).json()["token"]
        assert (await client.post("/api/v1/tenants/acme/installs",
                                  json={"extension_id": "echo", "content_hash": v1})).status_code == 201
        called = await client.get("/api/ext/echo/items", headers={"authorization": f"Bearer {token}",
                                                                  "x-request-id": "req-cli"})
        assert called.status_code == 200
    async with FileStore(str(store)) as opened:
        writer = journal.JournalWriter(opened, journal.JournalKeyring.parse(KEYS))
        async with trio.open_nursery() as inner:
            await inner.start(writer.run)
            writer.submit("acme", "echo", ENTRY, {"format": journal.JOURNAL_FORMAT, "entry_id": ENTRY,
                                                  "secrets_read": ["api_key"], "calls": []})
            await writer.flush()
            inner.cancel_scope.cancel()
    yield Stack(server.url, runner, v1, v2, token, tmp_path)
    with trio.fail_after(10):
        await server.close()
        await runner_server.close()


async def _extctl(stack: Stack, *argv: str, token: str | None = None) -> int:
    args = [argv[0], *argv[1:]]
    if args[0] == "journal":
        args = ["journal", args[1], "--gateway", stack.url, "--admin-token", token or stack.tenant_token, *args[2:]]
    else:
        args = [args[0], "--gateway", stack.url, "--admin-token", token or stack.tenant_token, *args[1:]]
    code: int = await trio.to_thread.run_sync(main, args)
    return code


def _report(verdict: str, **extra: Any) -> dict[str, Any]:
    return {"verdict": verdict, "divergence": None, "response_diff": [], "calls_replayed": 3, **extra}


async def test_journal_policy_list_and_show(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert await _extctl(stack, "journal", "policy", "echo", "all") == 0  # the tenant comes from the token
    assert json.loads(capsys.readouterr().out) == {"tenant_id": "acme", "extension_id": "echo",
                                                   "journal_policy": "all"}
    assert await _extctl(stack, "journal", "policy", "echo", "often") == 1
    assert capsys.readouterr().err.startswith("invalid_request: ")

    assert await _extctl(stack, "journal", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ENTRY", "RECORDED", "EXTENSION", "HASH", "OUTCOME", "STATUS", "REQUEST"]
    assert lines[1].split()[0] == ENTRY
    assert lines[1].split()[-3:] == ["ok", "200", "req-cli"]
    assert await _extctl(stack, "journal", "list", "--outcome", "trap") == 0
    assert capsys.readouterr().out.strip() == "no journal entries"
    assert await _extctl(stack, "journal", "list", "--json", "--extension", "echo") == 0
    assert [e["id"] for e in json.loads(capsys.readouterr().out)["entries"]] == [ENTRY]

    assert await _extctl(stack, "journal", "show", ENTRY) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["entry_id"], shown["secrets_read"]) == (ENTRY, ["api_key"])
    out = stack.tmp / "entry.json"
    assert await _extctl(stack, "journal", "show", ENTRY, "--out", str(out)) == 0
    assert json.loads(out.read_text())["entry_id"] == ENTRY
    assert await _extctl(stack, "journal", "show", "f" * 32) == 1
    assert capsys.readouterr().err.startswith("journal_entry_not_found: ")
    # The gateway admin token names no tenant: --tenant is needed.
    assert await _extctl(stack, "journal", "list", token=ADMIN_TOKEN) == 2
    assert "--tenant" in capsys.readouterr().err
    assert await _extctl(stack, "journal", "list", "--tenant", "acme", token=ADMIN_TOKEN) == 0


async def test_replay_prints_the_verdict_and_the_divergence(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    stack.runner.replay = lambda call: (200, _report("identical"))
    assert await _extctl(stack, "replay", ENTRY) == 0
    assert capsys.readouterr().out.startswith(f"identical: entry {ENTRY} against {stack.v1} (3 host calls replayed)")

    divergence = {"index": 2, "expected": {"fn": "alga:extension/storage#get"},
                  "actual": {"fn": "alga:extension/storage#set"}, "reason": "function differs"}
    stack.runner.replay = lambda call: (200, _report("calls_differ", divergence=divergence,
                                                     response_diff=["-a", "+b"]))
    assert await _extctl(stack, "replay", ENTRY, "--bundle", stack.v2) == 1
    captured = capsys.readouterr()
    assert "first divergence at call 2: function differs" in captured.out
    assert "storage#set" in captured.out
    assert "  +b" in captured.out
    assert captured.err.strip() == "replay_differs: calls_differ"
    assert stack.runner.replays[-1]["body"]["content_hash"] == stack.v2
    assert await _extctl(stack, "replay", ENTRY, "--json") == 1
    assert json.loads(capsys.readouterr().out)["divergence"] == divergence


async def test_upgrade_check_prints_a_table(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    stack.runner.replay = lambda call: (200, _report("response_differs", response_diff=["-x", "+y"]))
    assert await _extctl(stack, "upgrade-check", "echo", "--to", stack.v2, "--last", "5") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("upgrade check ")
    assert out[1].split() == ["ENTRY", "RECORDED", "OUTCOME", "VERDICT", "AT", "CALL", "DIFF"]
    assert out[2].split()[0] == ENTRY
    assert "response_differs" in out[2]
    assert out[2].endswith(f"/api/v1/tenants/acme/journal/{ENTRY}")
    assert out[-2] == "1 replayed: identical 0, response_differs 1, calls_differ 0, new_failure 0, error 0"
    assert out[-1] == "PASSED"

    stack.runner.replay = lambda call: (200, _report("new_failure"))
    assert await _extctl(stack, "upgrade-check", "echo", "--to", stack.v2) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == "NOT PASSED"
    assert captured.err.startswith("upgrade_check_failed: ")
    assert await _extctl(stack, "upgrade-check", "echo", "--to", "sha256:" + "0" * 64) == 1
    assert capsys.readouterr().err.startswith("version_not_found: ")


def test_journal_keygen_prints_a_key_both_services_accept(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journal", "keygen", "--id", "k2026"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("k2026:")
    assert journal.JournalKeyring.parse(key).key_ids == ("k2026",)
    settings = Settings.from_env({"RUNNER_BASE_URL": "http://127.0.0.1:1", "GATEWAY_JOURNAL_KEYS": key})
    assert settings.journal_keys is not None
    assert main(["journal", "keygen"]) == 0
    assert capsys.readouterr().out.strip() != key, "a new key each time"
    assert main(["journal", "keygen", "--id", "not ok"]) == 2
    assert capsys.readouterr().err.startswith("usage: --id: ")
