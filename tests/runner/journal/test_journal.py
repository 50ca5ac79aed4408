"""The invocation journal end to end through a real runner: ``/v1/execute`` with ``journal`` records an entry
(sealed into the bundle store), ``/v1/replay`` runs it again answered from the record.

The JS guest's ``POST /journal-demo`` reads a secret, fetches from a real local server with it, writes storage,
reads the clock and randomness, logs; the Python guest's ``GET /journal-demo`` reads the clocks and randomness and
logs. Both replay identically byte for byte; a changed bundle diverges at the call that changed; the secret's value
is never in the entry, opened or sealed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

import journal
import sealing
from bundles.store import open_store
from runner_trio import Settings
from tests.runner.capabilities._servers import Req, Resp, Server, start_server
from tests.runner.http.conftest import RunnerHandle, Shared, bundle_dir, decode_body, start_runner

from .wat import clocklog

pytestmark = pytest.mark.slow

SECRET = "s3cr3t-journal-value-7f3a"  # the test's secret, searched for in every entry
CAPS = ["cap:context.read", "cap:secrets.get", "cap:http.fetch", "cap:storage.kv", "cap:log.emit"]
PREFIX = "journal-test"


@dataclass
class Journaled:
    handle: RunnerHandle
    upstream: Server
    keyring: journal.JournalKeyring
    public_key: str
    store_dir: Path

    def envelope(self, tenant: str = "tenant-a", extension: str = "ext-1") -> dict[str, Any]:
        return sealing.seal({"api_key": SECRET}, self.public_key, tenant_id=tenant, extension_id=extension)

    async def entry(self, entry_id: str, tenant: str = "tenant-a", extension: str = "ext-1") -> dict[str, Any]:
        """The entry once the runner's writer has stored it (polled: writing is off the request path)."""
        store = open_store(self.store_dir.resolve().as_uri())
        reader = journal.JournalReader(store, self.keyring, prefix=PREFIX)
        try:
            with trio.fail_after(10):
                while True:
                    try:
                        return await reader.read(tenant, extension, entry_id)
                    except journal.JournalNotFound:
                        await trio.sleep(0.02)
        finally:
            await store.aclose()

    def raw_entries(self) -> list[bytes]:
        return [path.read_bytes() for path in (self.store_dir / PREFIX).rglob("*") if path.is_file()]

    async def replay(self, entry_id: str, *, content_hash: str | None = None, tenant: str = "tenant-a",
                     extension: str = "ext-1") -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {"tenant_id": tenant, "extension_id": extension, "entry_id": entry_id}
        if content_hash is not None:
            body["content_hash"] = content_hash
        response = await self.handle.client.post("/v1/replay", json=body)
        return response.status_code, response.json()


def _upstream() -> Callable[[Req], Any]:
    async def handler(req: Req) -> Resp:
        return Resp.json(200, {"path": req.path, "auth_ok": req.header("authorization") == f"Bearer {SECRET}"})

    return handler


@pytest.fixture
async def journaled(nursery: trio.Nursery, runner_settings: Callable[..., Settings],
                    shared: Shared, tmp_path: Path) -> AsyncIterator[Journaled]:
    upstream = await start_server(nursery, _upstream())
    private, public = sealing.generate_keypair()
    keys = journal.JournalKeyring.generate()
    store_dir = tmp_path / "journal-store"
    settings = runner_settings(
        egress_allowlist=(f"127.0.0.1:{upstream.port}",),
        secrets_private_key=private,
        journal_keys=keys,
        journal_store=store_dir.resolve().as_uri(),
        journal_prefix=PREFIX,
    )
    handle = await start_runner(nursery, settings, shared)
    try:
        yield Journaled(handle, upstream, journal.JournalKeyring.parse(keys), public, store_dir)
    finally:
        await handle.client.aclose()
        handle.shutdown.set()


async def _demo(j: Journaled, digest: str, policy: str | None = "all") -> dict[str, Any]:
    extra: dict[str, Any] = {"secret_envelope": j.envelope()}
    if policy is not None:
        extra["journal"] = policy
    body = json.dumps({"url": f"{j.upstream.url}/data"}).encode()
    return await j.handle.execute(digest, "/journal-demo", method="POST", body=body, providers=CAPS, extra=extra)


async def test_js_guest_recorded_then_replayed_identically(journaled: Journaled) -> None:
    j = journaled
    digest = await j.handle.publish_sample("js-kitchen-sink")
    result = await _demo(j, digest)
    assert result["error"] is None, result
    answer = json.loads(decode_body(result))
    assert answer["secret"] == SECRET
    assert answer["fetched"]["status"] == 200
    assert json.loads(answer["fetched"]["bodyText"])["auth_ok"] is True
    assert answer["stored"]["revision"] == 1
    entry_id = result["journal_entry"]
    assert entry_id is not None

    doc = await j.entry(entry_id)
    assert doc["format"] == journal.JOURNAL_FORMAT
    assert (doc["tenant_id"], doc["extension_id"]) == ("tenant-a", "ext-1")
    assert doc["content_hash"] == digest.removeprefix("sha256:")
    assert doc["request"]["secret_envelope"] is None
    assert doc["secrets_read"] == ["api_key"]
    assert doc["outcome"] == "ok"
    assert set(doc["timing"]) == {"load_ms", "queue_ms", "guest_ms"}
    functions = [call["fn"] for call in doc["calls"]]
    for expected in ("alga:extension/secrets#get", "alga:extension/http#fetch", "alga:extension/storage#put",
                     "wasi:clocks/wall-clock#now", "alga:extension/logging#log-info"):
        assert expected in functions, functions
    assert any(name.startswith("wasi:random/") for name in functions), functions
    assert [call["i"] for call in doc["calls"]] == list(range(len(doc["calls"])))
    secret_call = doc["calls"][functions.index("alga:extension/secrets#get")]
    assert secret_call["args"] == ["api_key"]
    assert secret_call["result"] == {"$v": "ok", "p": "«secret:api_key»"}
    fetch_call = doc["calls"][functions.index("alga:extension/http#fetch")]
    headers = fetch_call["args"][0]["$r"]["headers"]
    assert {"$r": {"name": "authorization", "value": "Bearer «secret:api_key»"}} in headers
    assert any("journal-demo fetched 200 with «secret:api_key»" in line["text"] for line in doc["output"])
    recorded_body = json.loads(journal_body(doc["result"]))
    assert recorded_body["secret"] == "«secret:api_key»"

    # The secret's value is nowhere: not in the opened entry, not in the stored bytes.
    assert SECRET not in json.dumps(doc, ensure_ascii=False)
    raw = j.raw_entries()
    assert raw
    assert all(SECRET.encode() not in blob for blob in raw)

    upstream_requests = len(j.upstream.seen)
    status, report = await j.replay(entry_id)
    assert status == 200, report
    assert report["verdict"] == "identical", report
    assert report["divergence"] is None
    assert report["response_diff"] == []
    assert report["calls_replayed"] == len(doc["calls"])
    # Nothing real was touched: no request upstream, no storage write (the next put is revision 2, not 3).
    assert len(j.upstream.seen) == upstream_requests
    again = json.loads(decode_body(await _demo(j, digest, policy=None)))
    assert again["stored"]["revision"] == 2


def journal_body(result: dict[str, Any]) -> bytes:
    return decode_body(result)


async def test_python_guest_recorded_then_replayed_identically(journaled: Journaled) -> None:
    j = journaled
    digest = await j.handle.publish_sample("py-hello")
    result = await j.handle.execute(digest, "/journal-demo", extra={"journal": "all"})
    assert result["error"] is None, result
    entry_id = result["journal_entry"]
    doc = await j.entry(entry_id)
    functions = {call["fn"] for call in doc["calls"]}
    assert "wasi:clocks/wall-clock#now" in functions
    assert "wasi:random/random#get-random-bytes" in functions
    assert "alga:extension/logging#log-info" in functions
    streams = {line["stream"] for line in doc["output"]}
    assert {"log", "stdout", "stderr"} <= streams
    status, report = await j.replay(entry_id)
    assert status == 200, report
    assert report["verdict"] == "identical", report
    assert report["calls_replayed"] == len(doc["calls"])

    # A sleep: the pollable is made again (subscribe-* runs), waiting on it answers from the record.
    slept = await j.handle.execute(digest, "/sleep", query={"ms": "50"}, extra={"journal": "all"})
    assert slept["error"] is None, slept
    sleep_doc = await j.entry(slept["journal_entry"])
    functions = {call["fn"] for call in sleep_doc["calls"]}
    assert functions & {"wasi:clocks/monotonic-clock#subscribe-duration",
                        "wasi:clocks/monotonic-clock#subscribe-instant"}
    assert functions & {"wasi:io/poll#[method]pollable.block", "wasi:io/poll#poll"}
    status, report = await j.replay(slept["journal_entry"])
    assert status == 200, report
    assert report["verdict"] == "identical", report


async def test_replay_against_a_changed_bundle_reports_the_divergence(journaled: Journaled) -> None:
    j = journaled
    work = j.handle.shared.work
    recorded = await j.handle.publish_dir(bundle_dir(work, "journal-clocklog", clocklog()))
    changed = await j.handle.publish_dir(bundle_dir(work, "journal-clocklog-warn", clocklog("log-warn", "two")))
    same_calls = await j.handle.publish_dir(bundle_dir(work, "journal-clocklog-same", clocklog("log-info", "two")))
    result = await j.handle.execute(recorded, "/", extra={"journal": "all"})
    entry_id = result["journal_entry"]
    doc = await j.entry(entry_id)
    assert [call["fn"] for call in doc["calls"]][-1] == "alga:extension/logging#log-info"

    status, report = await j.replay(entry_id, content_hash=changed)
    assert status == 200, report
    assert report["verdict"] == "calls_differ"
    assert report["divergence"]["index"] == 2
    assert report["divergence"]["expected"] == {"fn": "alga:extension/logging#log-info", "args": ["two"]}
    assert report["divergence"]["actual"] == {"fn": "alga:extension/logging#log-warn", "args": ["two"]}
    assert report["calls_replayed"] == 2
    assert report["response_diff"]  # the trap answers differently

    same = await j.replay(entry_id, content_hash=same_calls)  # another bundle, the same component
    assert same[1]["verdict"] == "identical"


async def test_replay_verdicts_response_differs_and_new_failure(journaled: Journaled) -> None:
    j = journaled
    work = j.handle.shared.work
    recorded = await j.handle.publish_dir(bundle_dir(work, "journal-verdict-base", clocklog()))
    other_status = await j.handle.publish_dir(bundle_dir(work, "journal-verdict-201", clocklog(status=201)))
    trapping = await j.handle.publish_dir(bundle_dir(work, "journal-verdict-trap", clocklog(trap=True)))
    entry_id = (await j.handle.execute(recorded, "/", extra={"journal": "all"}))["journal_entry"]
    await j.entry(entry_id)

    status, differs = await j.replay(entry_id, content_hash=other_status)
    assert status == 200
    assert differs["verdict"] == "response_differs"
    assert differs["divergence"] is None
    assert "-status: 200" in differs["response_diff"]
    assert "+status: 201" in differs["response_diff"]
    assert differs["calls_replayed"] == 3

    status, failure = await j.replay(entry_id, content_hash=trapping)
    assert status == 200
    assert failure["verdict"] == "new_failure"
    assert failure["divergence"] is None
    assert '+error: "execute_failed: trap"' in failure["response_diff"]

    status, missing = await j.replay(entry_id, content_hash="sha256:" + "0" * 64)
    assert status == 502
    assert missing["error"].startswith("bundle_fetch_failed")
    assert missing["entry_id"] == entry_id


async def test_errors_policy_and_no_policy(journaled: Journaled) -> None:
    j = journaled
    digest = await j.handle.publish_sample("py-hello")
    for extra in ({}, {"journal": "off"}, {"journal": "errors"}):
        result = await j.handle.execute(digest, "/hello", extra=extra)
        assert result["status"] == 200
        assert "journal_entry" not in result
    failed = await j.handle.execute(digest, "/raise", extra={"journal": "errors"})
    assert failed["error"] == "execute_failed: trap"
    doc = await j.entry(failed["journal_entry"])
    assert doc["outcome"] == "trap"
    assert doc["result"]["error"] == "execute_failed: trap"
    assert len(j.raw_entries()) == 1  # only the failure was recorded


async def test_replay_errors_are_structured(journaled: Journaled) -> None:
    j = journaled
    missing = await j.replay("0" * 32)
    assert missing == (404, {"error": "journal_entry_not_found", "entry_id": "0" * 32})
    response = await j.handle.client.post("/v1/replay", json={"tenant_id": "t", "extension_id": "../x",
                                                              "entry_id": "e"})
    assert response.status_code == 400
    assert response.json()["field"] == "extension_id"
    response = await j.handle.client.post("/v1/replay", content=b"not json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    unauthorized = await j.handle.client.post("/v1/replay", json={}, headers={"authorization": "Bearer nope"})
    assert unauthorized.status_code == 401


async def test_another_tenant_cannot_replay_an_entry(journaled: Journaled) -> None:
    j = journaled
    digest = await j.handle.publish_sample("py-hello")
    result = await j.handle.execute(digest, "/hello", extra={"journal": "all"})
    await j.entry(result["journal_entry"])
    status, body = await j.replay(result["journal_entry"], tenant="tenant-b")
    assert status == 404
    assert body["error"] == "journal_entry_not_found"


async def test_without_keys_the_policy_is_ignored(runner: RunnerHandle) -> None:
    digest = await runner.publish_sample("py-hello")
    result = await runner.execute(digest, "/hello", extra={"journal": "all"})
    assert result["status"] == 200
    assert "journal_entry" not in result
    response = await runner.client.post("/v1/replay", json={"tenant_id": "t", "extension_id": "e",
                                                            "entry_id": "0" * 32})
    assert response.status_code == 503
    assert response.json()["error"] == "journal_disabled"
