"""The debug console's journal panel in headless Chromium: a tenant admin signed in by session cookie lists the
extension's recorded invocations, opens one as a timeline of its host calls, and replays it.

The gateway is real (Hypercorn, SQLite registry, file store); the entry is sealed by the real
``journal.JournalWriter``; the runner is the contract-speaking stand-in of ``tests/gateway/_helpers`` (its
answer names the entry, its ``/v1/replay`` answers a report). Guest text in the entry is shown as text only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

import journal
from bundles.store import FileStore
from gateway_quart import Settings, create_app
from tests.gateway._helpers import FakeRunner, RunnerReply, manifest, publish, start_runner, start_server

from .test_host_page_chromium import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, _playwright

pytestmark = pytest.mark.browser

ADMIN = "admin-token-journal-console-0123456789"
KEYS = journal.JournalKeyring.generate("k1")
ENTRY = "c" * 32


@dataclass
class Panel:
    gateway: str
    token: str
    runner: FakeRunner


@pytest.fixture
async def panel(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[Panel]:
    store = tmp_path / "store"
    store.mkdir()
    runner = FakeRunner(reply=lambda call: RunnerReply(body=b"{}", journal_entry=ENTRY))
    runner.replay = lambda call: (200, {"verdict": "calls_differ", "calls_replayed": 1, "response_diff": [],
                                        "divergence": {"index": 1, "reason": "called storage#set, recorded get",
                                                       "expected": {"fn": "alga:extension/storage#get"},
                                                       "actual": {"fn": "alga:extension/storage#set"}}})
    runner_server = await start_runner(nursery, runner)
    settings = Settings(runner_base_urls=(runner_server.url,), registry_database=str(tmp_path / "r.sqlite3"),
                        bundle_store_base=f"file://{store}", admin_token=ADMIN, timeout_ms=5000,
                        journal_keys=journal.JournalKeyring.parse(KEYS))
    server = await start_server(nursery, create_app(settings))
    content_hash = await publish(store, tmp_path / "v1", manifest())
    async with httpx.AsyncClient(base_url=server.url, headers={"authorization": f"Bearer {ADMIN}"}) as client:
        assert (await client.post("/api/v1/extensions", json={"content_hash": content_hash,
                                                              "extension_id": "echo"})).is_success
        await client.post("/api/v1/tenants", json={"id": "acme", "name": "Acme"})
        user = (await client.post("/api/v1/tenants/acme/users", json={"email": "a@acme.test",
                                                                       "roles": ["admin"]})).json()
        token = (await client.post(f"/api/v1/users/{user['id']}/tokens", json={})).json()["token"]
        await client.post("/api/v1/tenants/acme/installs", json={"extension_id": "echo"})
        called = await client.get("/api/ext/echo/items", headers={"authorization": f"Bearer {token}",
                                                                  "x-request-id": "req-panel"})
        assert called.status_code == 200
    doc = {"format": journal.JOURNAL_FORMAT, "entry_id": ENTRY, "outcome": "ok", "secrets_read": [],
           "calls": [{"i": 0, "fn": "wasi:clocks/wall-clock#now", "args": [], "at_us": 5, "dur_us": 1,
                      "result": {"$r": {"seconds": 1, "nanoseconds": 0}}},
                     {"i": 1, "fn": "alga:extension/storage#get", "args": ["ns", "<b>key</b>"], "at_us": 1500,
                      "dur_us": 40, "result": {"$v": "ok", "p": None}}]}
    async with FileStore(str(store)) as opened:
        writer = journal.JournalWriter(opened, journal.JournalKeyring.parse(KEYS))
        async with trio.open_nursery() as inner:
            await inner.start(writer.run)
            writer.submit("acme", "echo", ENTRY, doc)
            await writer.flush()
            inner.cancel_scope.cancel()
    yield Panel(server.url, token, runner)
    with trio.fail_after(10):
        await server.close()
        await runner_server.close()


def _drive(panel: Panel) -> dict[str, Any]:
    with _playwright()() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.set_default_timeout(TIMEOUT_MS)
            assert context.request.post(f"{panel.gateway}/api/session", data={"token": panel.token}).ok
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{panel.gateway}/msp/extensions/echo/debug")
            page.click("#journal-load")
            page.wait_for_selector(f"#journal-entries tr[data-entry-id='{ENTRY}']")
            out: dict[str, Any] = {"entries": page.inner_text("#journal-entries tbody")}
            page.click(f"#journal-entries tr[data-entry-id='{ENTRY}']")
            page.wait_for_selector("#journal-timeline li.call >> nth=1")
            out["timeline"] = page.eval_on_selector_all("#journal-timeline li.call", "li => li.map(l => l.innerText)")
            out["html_tags"] = page.locator("#journal-timeline b").count()
            page.click("#journal-replay")
            page.wait_for_selector("#journal-replay-result[data-verdict]")
            out["replay"] = page.inner_text("#journal-replay-result")
            out["page_errors"] = errors
            return out
        finally:
            browser.close()


async def test_panel_lists_shows_a_timeline_and_replays(panel: Panel) -> None:
    out = await trio.to_thread.run_sync(_drive, panel)
    assert out["page_errors"] == []
    assert ENTRY in out["entries"]
    assert "req-panel" in out["entries"]
    first, second = out["timeline"]
    assert first.startswith("+5 µs (1 µs) #0 wasi:clocks/wall-clock#now(")
    assert second.startswith("+1.5 ms (40 µs) #1 alga:extension/storage#get(")
    assert "<b>key</b>" in second, "guest values are shown as text"
    assert out["html_tags"] == 0, "and never parsed as HTML"
    assert out["replay"].startswith("calls_differ (1 host calls replayed)")
    assert "first divergence at call 1: called storage#set, recorded get" in out["replay"]
    assert panel.runner.replays[-1]["body"] == {"tenant_id": "acme", "extension_id": "echo", "entry_id": ENTRY}
