"""The invocation journal through the gateway: policies, the entry index, RBAC, downloads, replay, upgrade checks
and the upgrade gate, the retention sweeper.

The runner is the contract-speaking stand-in of ``_helpers`` (its answers carry ``journal_entry`` as the
runner contract says; ``POST /v1/replay`` answers a ``ReplayReport``); entries are sealed by the real
``journal.JournalWriter`` into the gateway's real file store. End-to-end runs against a real runner are in
``test_journal_e2e.py``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import trio

import journal
from bundles.store import FileStore
from gateway_quart import Settings, SettingsError
from gateway_quart._errors import ApiError
from gateway_quart._journal_admin import object_deleter
from gateway_quart._journal_gate import ensure_upgrade_allowed
from gateway_quart._journal_index import JournalIndexer, sweep_expired
from gateway_quart._state import GatewayState
from gateway_quart.registry import JournalIndexEntry, SqliteRegistry, UpgradeCheck

from ._helpers import RunnerReply
from .conftest import SERVICE_TOKEN, Gateway, GatewayFactory, Tenant

KEYS = journal.JournalKeyring.generate("k1")
SECRET_VALUE = "s3cr3t-value-never-in-a-journal-9f8e"
ENTRY_ONE = "0" * 31 + "1"
ENTRY_TWO = "0" * 31 + "2"


def _recording(entries: list[str], *, error: str | None = None) -> Any:
    """A runner behaviour that says it recorded the next id of ``entries`` for each call."""

    def reply(call: dict[str, Any]) -> RunnerReply:
        entry = entries.pop(0) if entries else None
        if error is not None:
            return RunnerReply(status=500, headers={}, body=None, error=error, journal_entry=entry)
        return RunnerReply(body=b'{"ok":true}', journal_entry=entry)

    return reply


async def _stack(make_gateway: GatewayFactory, **overrides: Any) -> tuple[Gateway, Tenant, Tenant]:
    """Tenant ``acme`` with the echo extension installed (its admin and a member), tenant ``globex`` (an admin)."""
    gateway = await make_gateway(**overrides)
    await gateway.register(await gateway.publish("v1"))
    admin = await gateway.tenant("acme", roles=["admin"])
    await gateway.install("acme", granted_capabilities=["cap:secrets.get"])
    other = await gateway.tenant("globex", roles=["admin"], email="eve@example.com")
    return gateway, admin, other


async def _call(gateway: Gateway, tenant: Tenant, request_id: str = "req-1") -> None:
    resp = await gateway.client.get("/api/ext/echo/items", headers={**tenant.auth, "x-request-id": request_id})
    assert resp.status_code in (200, 502), resp.text


async def test_policy_is_set_per_install_and_sent_on_every_call(make_gateway: GatewayFactory) -> None:
    gateway, admin, other = await _stack(make_gateway)
    path = "/api/v1/tenants/acme/installs/echo/journal"
    await _call(gateway, admin)
    assert gateway.runner.calls[-1]["body"]["journal"] == "errors", "the default policy"

    resp = await gateway.client.put(path, json={"policy": "sample:0.25"}, headers=admin.auth)
    assert resp.status_code == 200, resp.text
    assert resp.json()["journal_policy"] == "sample:0.25"
    await _call(gateway, admin)
    assert gateway.runner.calls[-1]["body"]["journal"] == "sample:0.25", "a new policy applies at once"
    install = await gateway.client.get("/api/v1/tenants/acme/installs/echo", headers=admin.auth)
    assert install.json()["journal_policy"] == "sample:0.25"

    for bad in ("sometimes", "sample:0", "sample:2", "", "ALL;drop"):
        resp = await gateway.client.put(path, json={"policy": bad}, headers=admin.auth)
        assert resp.status_code == 400, bad
        assert "policy" in resp.json()["fields"]
    resp = await gateway.client.put(path, json={"policy": "all"}, headers=other.auth)
    assert (resp.status_code, resp.json()["error"]) == (404, "tenant_not_found"), "another tenant's admin"
    member = await gateway.user("acme", roles=["member"], email="mo@example.com")
    assert (await gateway.client.put(path, json={"policy": "all"}, headers=member.auth)).status_code == 403
    resp = await gateway.client.put("/api/v1/tenants/acme/installs/nope/journal", json={"policy": "all"},
                                    headers=admin.auth)
    assert (resp.status_code, resp.json()["error"]) == (404, "not_installed")


async def test_entries_named_by_the_runner_are_indexed_and_listed(make_gateway: GatewayFactory) -> None:
    gateway, admin, _ = await _stack(make_gateway)
    gateway.runner.reply = _recording([ENTRY_ONE])
    await _call(gateway, admin, "req-ok")
    gateway.runner.reply = _recording([ENTRY_TWO], error="execute_failed: trap: unreachable")
    await _call(gateway, admin, "req-trap")
    gateway.runner.reply = _recording([])  # not recorded: nothing indexed
    await _call(gateway, admin, "req-none")

    resp = await gateway.client.get("/api/v1/tenants/acme/journal", headers=admin.auth)
    assert resp.status_code == 200, resp.text
    entries = resp.json()["entries"]
    assert [(e["id"], e["request_id"], e["outcome"], e["status"]) for e in entries] == [
        (ENTRY_TWO, "req-trap", "trap", 500), (ENTRY_ONE, "req-ok", "ok", 200)]
    hash_v1 = gateway.bundles["v1"]
    assert {e["content_hash"] for e in entries} == {hash_v1}
    assert all(e["extension_id"] == "echo" and e["tenant_id"] == "acme" for e in entries)
    recorded = datetime.fromisoformat(entries[0]["recorded_at"])
    expires = datetime.fromisoformat(entries[0]["expires_at"])
    assert expires - recorded == timedelta(days=14), "GATEWAY_JOURNAL_RETENTION_DAYS' default"

    trap = await gateway.client.get("/api/v1/tenants/acme/journal", params={"outcome": "trap"}, headers=admin.auth)
    assert [e["id"] for e in trap.json()["entries"]] == [ENTRY_TWO]
    none = await gateway.client.get("/api/v1/tenants/acme/journal", params={"extension": "other"}, headers=admin.auth)
    assert none.json()["entries"] == []
    one = await gateway.client.get("/api/v1/tenants/acme/journal", params={"limit": "1"}, headers=admin.auth)
    assert [e["id"] for e in one.json()["entries"]] == [ENTRY_TWO]
    bad = await gateway.client.get("/api/v1/tenants/acme/journal", params={"limit": "0", "outcome": "a b"},
                                   headers=admin.auth)
    assert bad.status_code == 400
    assert set(bad.json()["fields"]) == {"limit", "outcome"}


async def test_another_tenant_can_neither_list_nor_fetch_an_entry(make_gateway: GatewayFactory) -> None:
    gateway, admin, other = await _stack(make_gateway, journal_keys=journal.JournalKeyring.parse(KEYS))
    gateway.runner.reply = _recording([ENTRY_ONE])
    await _call(gateway, admin)
    own = await gateway.client.get("/api/v1/tenants/acme/journal", headers=admin.auth)
    assert [e["id"] for e in own.json()["entries"]] == [ENTRY_ONE]

    listed = await gateway.client.get("/api/v1/tenants/acme/journal", headers=other.auth)
    assert (listed.status_code, listed.json()["error"]) == (404, "tenant_not_found")
    assert (await gateway.client.get("/api/v1/tenants/globex/journal", headers=other.auth)).json() == {"entries": []}
    # Through either tenant's path, another tenant's entry is answered exactly like one that does not exist.
    answers = []
    for path in (f"/api/v1/tenants/acme/journal/{ENTRY_ONE}", f"/api/v1/tenants/globex/journal/{ENTRY_ONE}",
                 "/api/v1/tenants/globex/journal/" + "f" * 32, f"/api/v1/tenants/acme/journal/{ENTRY_ONE}/replay"):
        method = "POST" if path.endswith("/replay") else "GET"
        resp = await gateway.client.request(method, path, headers=other.auth)
        body = resp.json()
        body.pop("requestId", None)
        answers.append((resp.status_code, body))
    assert answers == [(404, {"error": "journal_entry_not_found", "message": answers[0][1]["message"]})] * 4
    assert gateway.runner.replays == [], "nothing was replayed for the other tenant"
    member = await gateway.user("acme", roles=["member"], email="mo@example.com")
    assert (await gateway.client.get("/api/v1/tenants/acme/journal", headers=member.auth)).status_code == 403


async def _write_entry(store_dir: Path, entry_id: str, *, content_hash: str, keys: str = KEYS,
                       prefix: str = journal.DEFAULT_PREFIX) -> dict[str, Any]:
    """An entry as a runner records it (secret value replaced by its name), sealed into the file store."""
    doc = {
        "format": journal.JOURNAL_FORMAT, "entry_id": entry_id, "recorded_at": "2026-12-06T10:00:00.000Z",
        "tenant_id": "acme", "extension_id": "echo", "content_hash": content_hash.removeprefix("sha256:"),
        "install_id": "i", "request_id": "req-1",
        "request": {"http": {"method": "GET", "path": "/items"}, "secret_envelope": None},
        "grants": ["secrets"],
        "calls": [
            {"i": 0, "fn": "alga:extension/secrets#get", "args": ["api_key"],
             "result": {"$v": "ok", "p": "«secret:api_key»"}, "at_us": 10, "dur_us": 3},
            {"i": 1, "fn": "wasi:clocks/wall-clock#now", "args": [],
             "result": {"$r": {"seconds": 1, "nanoseconds": 2}}, "at_us": 20, "dur_us": 1},
        ],
        "output": [{"stream": "log", "level": "info", "text": "key «secret:api_key»"}],
        "secrets_read": ["api_key"], "outcome": "ok",
        "result": {"status": 200, "headers": {}, "body_b64": None, "error": None},
        "timing": {"load_ms": 1, "queue_ms": 0, "guest_ms": 2}, "dropped_calls": 0,
    }
    async with FileStore(str(store_dir)) as store:
        writer = journal.JournalWriter(store, journal.JournalKeyring.parse(keys), prefix=prefix)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            assert writer.submit("acme", "echo", entry_id, doc)
            await writer.flush()
            nursery.cancel_scope.cancel()
    return doc


async def test_download_of_an_entry_written_by_the_journal_writer(make_gateway: GatewayFactory) -> None:
    gateway, admin, _ = await _stack(make_gateway, journal_keys=journal.JournalKeyring.parse(KEYS))
    doc = await _write_entry(gateway.store_dir, ENTRY_ONE, content_hash=gateway.bundles["v1"])
    gateway.runner.reply = _recording([ENTRY_ONE, ENTRY_TWO])
    await _call(gateway, admin)
    await _call(gateway, admin)  # ENTRY_TWO is indexed, but no object was ever written for it

    resp = await gateway.client.get(f"/api/v1/tenants/acme/journal/{ENTRY_ONE}", headers=admin.auth)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert "attachment" in resp.headers["content-disposition"]
    assert resp.json() == doc
    assert [c["fn"] for c in resp.json()["calls"]] == ["alga:extension/secrets#get", "wasi:clocks/wall-clock#now"]
    assert SECRET_VALUE not in resp.text
    assert resp.json()["secrets_read"] == ["api_key"], "names only"
    stored = b"".join(p.read_bytes() for p in gateway.store_dir.rglob("*.jrnl"))
    assert stored
    assert b"api_key" not in stored, "sealed at rest: not even the secret's name is readable"

    gone = await gateway.client.get(f"/api/v1/tenants/acme/journal/{ENTRY_TWO}", headers=admin.auth)
    assert (gone.status_code, gone.json()["error"]) == (404, "journal_entry_not_found")
    admin_token = await gateway.client.get(f"/api/v1/tenants/acme/journal/{ENTRY_ONE}", headers=gateway.admin)
    assert admin_token.status_code == 200, "the gateway admin token reads any tenant's entries"


async def test_download_needs_the_keys(make_gateway: GatewayFactory) -> None:
    gateway, admin, _ = await _stack(make_gateway)  # no GATEWAY_JOURNAL_KEYS
    await _write_entry(gateway.store_dir, ENTRY_ONE, content_hash=gateway.bundles["v1"])
    gateway.runner.reply = _recording([ENTRY_ONE])
    await _call(gateway, admin)
    resp = await gateway.client.get(f"/api/v1/tenants/acme/journal/{ENTRY_ONE}", headers=admin.auth)
    assert (resp.status_code, resp.json()["error"]) == (503, "journal_unavailable")

    # Keys that do not include the one the entry was sealed with: the same refusal, naming no key.
    other_keys = journal.JournalKeyring.parse(journal.JournalKeyring.generate("k2"))
    wrong, wrong_admin, _ = await _stack(make_gateway, journal_keys=other_keys)
    await _write_entry(wrong.store_dir, ENTRY_ONE, content_hash=wrong.bundles["v1"])
    wrong.runner.reply = _recording([ENTRY_ONE])
    await _call(wrong, wrong_admin)
    resp = await wrong.client.get(f"/api/v1/tenants/acme/journal/{ENTRY_ONE}", headers=wrong_admin.auth)
    assert (resp.status_code, resp.json()["error"]) == (503, "journal_unavailable")


def _report(verdict: str, **extra: Any) -> dict[str, Any]:
    return {"verdict": verdict, "divergence": None, "response_diff": [], "calls_replayed": 2, **extra}


async def test_replay_is_forwarded_to_a_runner_with_the_service_token(make_gateway: GatewayFactory) -> None:
    gateway, admin, _ = await _stack(make_gateway)
    gateway.runner.reply = _recording([ENTRY_ONE])
    await _call(gateway, admin)
    gateway.runner.replay = lambda call: (200, _report("identical"))

    resp = await gateway.client.post(f"/api/v1/tenants/acme/journal/{ENTRY_ONE}/replay", headers=admin.auth)
    assert resp.status_code == 200, resp.text
    assert resp.json()["verdict"] == "identical"
    assert resp.json()["content_hash"] == gateway.bundles["v1"]
    sent = gateway.runner.replays[-1]
    assert sent["headers"]["authorization"] == f"Bearer {SERVICE_TOKEN}"
    assert sent["body"] == {"tenant_id": "acme", "extension_id": "echo", "entry_id": ENTRY_ONE}

    v2 = await gateway.publish("v2", version="2.0.0")
    await gateway.register(v2)
    divergence = {"index": 1, "expected": {"fn": "a#b"}, "actual": {"fn": "a#c"}, "reason": "function differs"}
    gateway.runner.replay = lambda call: (200, _report("calls_differ", divergence=divergence))
    resp = await gateway.client.post(f"/api/v1/tenants/acme/journal/{ENTRY_ONE}/replay", json={"content_hash": v2},
                                     headers=admin.auth)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["verdict"], resp.json()["divergence"]) == ("calls_differ", divergence)
    assert gateway.runner.replays[-1]["body"]["content_hash"] == v2

    unregistered = "sha256:" + "c" * 64
    resp = await gateway.client.post(f"/api/v1/tenants/acme/journal/{ENTRY_ONE}/replay",
                                     json={"content_hash": unregistered}, headers=admin.auth)
    assert (resp.status_code, resp.json()["error"]) == (404, "version_not_found")
    resp = await gateway.client.post(f"/api/v1/tenants/acme/journal/{ENTRY_ONE}/replay",
                                     json={"content_hash": "md5:x"}, headers=admin.auth)
    assert resp.status_code == 400
    gateway.runner.replay = lambda call: (404, {"error": "journal_entry_not_found", "message": "gone"})
    resp = await gateway.client.post(f"/api/v1/tenants/acme/journal/{ENTRY_ONE}/replay", headers=admin.auth)
    assert (resp.status_code, resp.json()["error"]) == (404, "journal_entry_not_found")
    gateway.runner.replay = lambda call: (422, {"error": "journal_entry_unreadable", "message": "no calls"})
    resp = await gateway.client.post(f"/api/v1/tenants/acme/journal/{ENTRY_ONE}/replay", headers=admin.auth)
    assert (resp.status_code, resp.json()["error"], resp.json()["message"]) == (409, "journal_entry_unreadable",
                                                                                "no calls")
    gateway.runner.replay = lambda call: (503, {"error": "journal_disabled"})
    resp = await gateway.client.post(f"/api/v1/tenants/acme/journal/{ENTRY_ONE}/replay", headers=admin.auth)
    assert (resp.status_code, resp.json()["error"]) == (503, "journal_unavailable")
    gateway.runner.replay = lambda call: (502, {"error": "bundle_fetch_failed", "message": "no such bundle"})
    resp = await gateway.client.post(f"/api/v1/tenants/acme/journal/{ENTRY_ONE}/replay", headers=admin.auth)
    assert (resp.status_code, resp.json()["error"]) == (502, "bundle_fetch_failed")
    gateway.runner.replay = lambda call: (401, {"error": "unauthorized"})
    resp = await gateway.client.post(f"/api/v1/tenants/acme/journal/{ENTRY_ONE}/replay", headers=admin.auth)
    assert (resp.status_code, resp.json()["error"]) == (502, "bad_gateway")


async def test_upgrade_check_table_and_the_upgrade_gate(make_gateway: GatewayFactory) -> None:
    gateway, admin, _ = await _stack(make_gateway)
    v1, v2 = gateway.bundles["v1"], await gateway.publish("v2", version="2.0.0")
    await gateway.register(v2)
    upgrade = "/api/v1/tenants/acme/installs/echo/upgrade"
    check = "/api/v1/tenants/acme/installs/echo/upgrade-check"

    settings = await gateway.client.put("/api/v1/tenants/acme/settings", json={"require_upgrade_check": True},
                                        headers=admin.auth)
    assert settings.json() == {"require_upgrade_check": True}
    refused = await gateway.client.post(upgrade, json={"content_hash": v2}, headers=admin.auth)
    assert refused.status_code == 409, refused.text
    assert (refused.json()["error"], refused.json()["from"], refused.json()["to"]) == ("upgrade_check_required", v1, v2)

    gateway.runner.reply = _recording([ENTRY_ONE, ENTRY_TWO])
    await _call(gateway, admin, "req-a")
    await _call(gateway, admin, "req-b")
    verdicts = {ENTRY_ONE: "response_differs", ENTRY_TWO: "calls_differ"}
    gateway.runner.replay = lambda call: (200, _report(verdicts[call["body"]["entry_id"]]))
    failing = await gateway.client.post(check, json={"to": v2, "last": 5}, headers=admin.auth)
    assert failing.status_code == 200, failing.text
    table = failing.json()
    assert (table["from"], table["to"], table["passed"]) == (v1, v2, False)
    assert table["summary"] == {"identical": 0, "response_differs": 1, "calls_differ": 1, "new_failure": 0,
                                "error": 0, "total": 2}
    assert {(row["entry_id"], row["verdict"]) for row in table["entries"]} == set(verdicts.items())
    assert all(row["link"] == f"/api/v1/tenants/acme/journal/{row['entry_id']}" for row in table["entries"])
    assert {r["body"]["content_hash"] for r in gateway.runner.replays} == {v2}
    refused = await gateway.client.post(upgrade, json={"content_hash": v2}, headers=admin.auth)
    assert (refused.status_code, refused.json()["check_id"]) == (409, table["id"]), "the newest check failed"

    verdicts[ENTRY_TWO] = "identical"
    passing = await gateway.client.post(check, json={"to": v2}, headers=admin.auth)
    assert passing.json()["passed"] is True
    upgraded = await gateway.client.post(upgrade, json={"content_hash": v2}, headers=admin.auth)
    assert upgraded.status_code == 200, upgraded.text
    assert upgraded.json()["content_hash"] == v2

    # Back to v1: no check of (v2 -> v1) exists; with the gate off it goes through.
    refused = await gateway.client.post(upgrade, json={"content_hash": v1}, headers=admin.auth)
    assert refused.status_code == 409
    await gateway.client.put("/api/v1/tenants/acme/settings", json={"require_upgrade_check": False},
                             headers=admin.auth)
    assert (await gateway.client.post(upgrade, json={"content_hash": v1}, headers=admin.auth)).status_code == 200


async def test_upgrade_check_refusals(make_gateway: GatewayFactory) -> None:
    gateway, admin, other = await _stack(make_gateway)
    check = "/api/v1/tenants/acme/installs/echo/upgrade-check"
    v2 = await gateway.publish("v2", version="2.0.0")
    await gateway.register(v2)
    nothing = await gateway.client.post(check, json={"to": v2}, headers=admin.auth)
    assert nothing.status_code == 200
    assert (nothing.json()["passed"], nothing.json()["summary"]["total"]) == (False, 0), "no evidence, no pass"
    for body, field in (({"to": "sha256:" + "d" * 64}, None), ({"to": "nope"}, "to"), ({"to": v2, "last": 0}, "last"),
                        ({}, "to")):
        resp = await gateway.client.post(check, json=body, headers=admin.auth)
        if field is None:
            assert (resp.status_code, resp.json()["error"]) == (404, "version_not_found")
        else:
            assert resp.status_code == 400
            assert field in resp.json()["fields"]
    assert (await gateway.client.post(check, json={"to": v2}, headers=other.auth)).status_code == 404
    resp = await gateway.client.put("/api/v1/tenants/acme/settings", json={"require_upgrade_check": "yes"},
                                    headers=admin.auth)
    assert resp.status_code == 400
    assert (await gateway.client.get("/api/v1/tenants/acme/settings", headers=other.auth)).status_code == 404
    missing = await gateway.client.get("/api/v1/tenants/nobody/settings", headers=gateway.admin)
    assert (missing.status_code, missing.json()["error"]) == (404, "tenant_not_found")


async def test_retention_sweeper_deletes_expired_objects_and_rows(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    await _write_entry(store_dir, ENTRY_ONE, content_hash="a" * 64)
    await _write_entry(store_dir, ENTRY_TWO, content_hash="a" * 64)
    registry = await SqliteRegistry.open(str(tmp_path / "r.sqlite3"))
    now = datetime(2026, 12, 6, tzinfo=UTC)
    try:
        indexer = JournalIndexer(registry)
        for entry_id, expires in ((ENTRY_ONE, "2026-12-05T00:00:00.000Z"), (ENTRY_TWO, "2026-12-20T00:00:00.000Z")):
            assert indexer.submit(JournalIndexEntry(entry_id, "acme", "echo", None, "a" * 64, None, "ok", 200,
                                                    "2026-11-21T00:00:00.000Z", expires))
        await indexer.flush()
        async with FileStore(str(store_dir)) as store:
            reader = journal.JournalReader(store, journal.JournalKeyring.parse(KEYS))
            # What the app's sweeper deletes objects with (it needs no key: the object's name is enough).
            delete = object_deleter(Settings(runner_base_urls=("http://127.0.0.1:1",)), store)
            assert delete is not None
            assert await sweep_expired(registry, delete, now=now) == 1
            with pytest.raises(journal.JournalNotFound):
                await reader.read("acme", "echo", ENTRY_ONE)
            assert (await reader.read("acme", "echo", ENTRY_TWO))["entry_id"] == ENTRY_TWO
            assert [e.id for e in await registry.list_journal_entries("acme", limit=10)] == [ENTRY_TWO]
            assert await sweep_expired(registry, delete, now=now) == 0
    finally:
        await registry.aclose()


async def test_index_buffer_is_bounded_and_counts_drops(tmp_path: Path) -> None:
    registry = await SqliteRegistry.open(str(tmp_path / "r.sqlite3"))
    try:
        indexer = JournalIndexer(registry, max_buffered=2)
        rows = [JournalIndexEntry(f"{i:032x}", "acme", "echo", None, "a" * 64, None, "ok", 200,
                                  "2026-12-06T00:00:00.000Z", "2026-12-20T00:00:00.000Z") for i in range(3)]
        assert [indexer.submit(row) for row in rows] == [True, True, False]
        assert indexer.statistics().dropped == 1
        await indexer.flush()
        assert replace(indexer.statistics(), buffered=0).written == 2
        assert len(await registry.list_journal_entries("acme", limit=10)) == 2
    finally:
        await registry.aclose()


def test_settings_read_the_journal_variables() -> None:
    base = {"RUNNER_BASE_URL": "http://127.0.0.1:1"}
    settings = Settings.from_env({**base, "GATEWAY_JOURNAL_KEYS": KEYS, "GATEWAY_JOURNAL_RETENTION_DAYS": "3"})
    assert settings.journal_keys is not None
    assert settings.journal_keys.key_ids == ("k1",)
    assert settings.journal_retention_days == 3
    assert KEYS.split(":")[1] not in repr(settings)
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**base, "GATEWAY_JOURNAL_KEYS": "k1:not-base64"})
    assert info.value.setting == "GATEWAY_JOURNAL_KEYS"
    assert "not-base64" not in json.dumps(info.value.message)


async def test_debug_console_serves_the_journal_panel(make_gateway: GatewayFactory) -> None:
    gateway, admin, _ = await _stack(make_gateway)
    page = await gateway.client.get("/msp/extensions/echo/debug", headers=admin.auth)
    assert page.status_code == 200, page.text
    assert 'data-journal-path="/api/v1/tenants/acme/journal"' in page.text, "the caller's own tenant"
    for element in ('id="journal-load"', 'id="journal-entries"', 'id="journal-timeline"', 'id="journal-replay"'):
        assert element in page.text
    script = await gateway.client.get("/ext-debug/assets/console.js")
    assert script.status_code == 200
    assert "journalPath + \"/\" + encodeURIComponent(entryId) + \"/replay\"" in script.text
    assert "innerHTML" not in script.text, "entry contents are inserted as text only"
    assert "connect-src 'self'" in page.headers["content-security-policy"], "the panel's fetches are same-origin"


async def test_a_starting_gateway_sweeps_expired_entries(make_gateway: GatewayFactory) -> None:
    first = await make_gateway()
    await _write_entry(first.store_dir, ENTRY_ONE, content_hash="a" * 64)
    registry = await SqliteRegistry.open(first.settings.registry_database)
    try:
        await registry.record_journal_entries([JournalIndexEntry(
            ENTRY_ONE, "acme", "echo", None, "a" * 64, None, "ok", 200, "2020-01-01T00:00:00.000Z",
            "2020-01-15T00:00:00.000Z")])
        # A second gateway on the same registry and store: its sweeper runs at start, then every 10 minutes.
        await make_gateway(registry_database=first.settings.registry_database,
                           bundle_store_base=first.settings.bundle_store_base)
        with trio.fail_after(10):
            for _ in range(1000):  # the sweep runs in the new gateway's background: poll its outcome
                if not await registry.list_journal_entries("acme", limit=1):
                    break
                await trio.sleep(0.05)
        assert await registry.list_journal_entries("acme", limit=1) == []
        assert not list(first.store_dir.rglob("*.jrnl")), "the sealed object went with its row"
    finally:
        await registry.aclose()


async def test_the_gate_accepts_a_passing_check_younger_than_a_day(tmp_path: Path) -> None:
    registry = await SqliteRegistry.open(str(tmp_path / "r.sqlite3"))
    try:
        await registry.ensure_tenant("acme", "Acme")
        versions = []
        for content_hash in ("a" * 64, "b" * 64):
            _, version, _ = await registry.register_version(
                extension_id="echo", name="echo", publisher="Example", version="1", content_hash=content_hash,
                manifest_json="{}", signature_status="unsigned")
            versions.append(version)
        install = await registry.create_install(tenant_id="acme", extension_id="echo", version_id=versions[0].id,
                                                granted_capabilities=[], config={})
        st = cast(GatewayState, SimpleNamespace(registry=registry))
        now = datetime(2026, 12, 6, 12, tzinfo=UTC)
        await ensure_upgrade_allowed(st, install, versions[1], now=now)  # the tenant does not require checks
        await registry.update_tenant_settings("acme", {"require_upgrade_check": True})
        await ensure_upgrade_allowed(st, install, versions[0], now=now)  # not a version change

        async def check(age: timedelta, passed: bool) -> None:
            created = (now - age).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            await registry.record_upgrade_check(UpgradeCheck(f"c-{age}-{passed}", "acme", "echo", "a" * 64, "b" * 64,
                                                             passed, "{}", created))

        await check(timedelta(hours=25), True)
        with pytest.raises(ApiError) as refused:
            await ensure_upgrade_allowed(st, install, versions[1], now=now)
        assert (refused.value.status, refused.value.code) == (409, "upgrade_check_required")
        assert refused.value.extra["check_id"] is None, "a passing check older than a day does not count"
        await check(timedelta(hours=23), True)
        await ensure_upgrade_allowed(st, install, versions[1], now=now)
        await check(timedelta(hours=1), False)
        with pytest.raises(ApiError) as refused:
            await ensure_upgrade_allowed(st, install, versions[1], now=now)
        assert refused.value.extra["check_id"] == f"c-{timedelta(hours=1)}-False", "the newest check decides"
    finally:
        await registry.aclose()


async def test_a_journal_store_of_its_own(make_gateway: GatewayFactory, tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal-store"
    journal_dir.mkdir()
    gateway, admin, _ = await _stack(make_gateway, journal_keys=journal.JournalKeyring.parse(KEYS),
                                     journal_store=f"file://{journal_dir}", journal_prefix="jr")
    doc = await _write_entry(journal_dir, ENTRY_ONE, content_hash=gateway.bundles["v1"], prefix="jr")
    gateway.runner.reply = _recording([ENTRY_ONE])
    await _call(gateway, admin)
    resp = await gateway.client.get(f"/api/v1/tenants/acme/journal/{ENTRY_ONE}", headers=admin.auth)
    assert resp.status_code == 200, resp.text
    assert resp.json() == doc
    assert not list(gateway.store_dir.rglob("*.jrnl")), "nothing in the bundle store"


async def test_index_and_gate_on_postgresql(make_gateway: GatewayFactory, postgres_url: str) -> None:
    gateway, admin, other = await _stack(make_gateway, registry_database=postgres_url)
    gateway.runner.reply = _recording([ENTRY_ONE])
    await _call(gateway, admin, "req-pg")
    listed = (await gateway.client.get("/api/v1/tenants/acme/journal", headers=admin.auth)).json()["entries"]
    assert [(e["id"], e["request_id"]) for e in listed] == [(ENTRY_ONE, "req-pg")]
    assert (await gateway.client.get("/api/v1/tenants/globex/journal", headers=other.auth)).json() == {"entries": []}
    v2 = await gateway.publish("v2", version="2.0.0")
    await gateway.register(v2)
    await gateway.client.put("/api/v1/tenants/acme/settings", json={"require_upgrade_check": True}, headers=admin.auth)
    upgrade = "/api/v1/tenants/acme/installs/echo/upgrade"
    assert (await gateway.client.post(upgrade, json={"content_hash": v2}, headers=admin.auth)).status_code == 409
    gateway.runner.replay = lambda call: (200, _report("identical"))
    check = await gateway.client.post("/api/v1/tenants/acme/installs/echo/upgrade-check", json={"to": v2},
                                      headers=admin.auth)
    assert check.json()["passed"] is True
    assert (await gateway.client.post(upgrade, json={"content_hash": v2}, headers=admin.auth)).status_code == 200
