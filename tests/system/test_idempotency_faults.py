"""A runner killed with SIGKILL mid-load: after the gateway's retries, each keyed request's guest ran at most once.

Real processes: two ``python -m runner_trio`` sharing a redis-server as their idempotency store, the gateway in
front of them, the JS kitchen-sink guest, and a counter server that the guest calls (``POST /http``) once per
run, so guest runs are counted outside the runners (a killed runner's metrics die with it).
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

import sealing
from bundles import pack_directory, publish_bundle
from bundles.store import open_store
from gateway_quart import Settings as GatewaySettings
from gateway_quart import create_app
from tests._net import free_port
from tests._redis import RedisServer
from tests.gateway._helpers import Server
from tests.gateway._helpers import start_server as start_gateway
from tests.runner.capabilities._servers import Req, Resp
from tests.runner.capabilities._servers import start_server as start_upstream
from tests.runner.http.conftest import TOKEN, Shared, stage_sample

pytestmark = pytest.mark.slow

ADMIN = "admin-token-idempotency-faults-0123"
KEYS = 24
GUEST_HOLD_S = 1.5  # the counter answers the guest's call this late: the kill lands while guests run
TIMEOUT_MS = 4000


class Runner:
    """A runner process on a fixed free port."""

    def __init__(self, name: str, env: dict[str, str], tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "runner_trio"],
                env={**env, "RUNNER_BIND": f"127.0.0.1:{self.port}", "RUNNER_VAR_DIR": str(tmp / name)},
                stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the supervisor and its workers
            )

    async def ready(self, client: httpx.AsyncClient) -> None:
        with trio.fail_after(60):
            while True:
                assert self.proc.poll() is None, self.log.read_text()
                try:
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await trio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the whole runner: the supervisor and every worker process (its process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        self.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
async def runners(tmp_path: Path, redis_server: RedisServer, shared: Shared) -> AsyncIterator[Any]:
    started: list[Runner] = []

    def start(name: str, upstream_port: int) -> Runner:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RUNNER_", "EXT_", "BUNDLE_", "SIGNING_", "VAULT_", "UI_PROXY_", "REGISTRY_"))}
        env |= {
            "BUNDLE_STORE_BASE": shared.store_dir.resolve().as_uri(),
            "EXT_CACHE_ROOT": str(tmp_path / f"cache-{name}"),
            "RUNNER_PRECOMPILE_KEY": "idempotency-faults-precompile-key-0123456789",  # one compile, shared
            "RUNNER_SERVICE_TOKEN": TOKEN,
            "RUNNER_IDEMPOTENCY_URL": redis_server.url,
            "RUNNER_IDEMPOTENCY_CLAIM_MARGIN_S": "1",
            "RUNNER_MAX_CONCURRENCY": "32",
            "RUNNER_MAX_CONCURRENCY_PER_TENANT": "32",
            "RUNNER_MAX_CONCURRENCY_PER_EXTENSION": "32",
            "RUNNER_DRAIN_TIMEOUT_S": "1",
            "EXT_EGRESS_ALLOWLIST": f"127.0.0.1:{upstream_port}",
            "EXT_STATIC_STRICT_VALIDATION": "false",
        }
        runner = Runner(name, env, tmp_path)
        started.append(runner)
        return runner

    try:
        yield start
    finally:
        for runner in started:
            await trio.to_thread.run_sync(runner.stop)


async def _setup_gateway(nursery: trio.Nursery, tmp_path: Path, shared: Shared, urls: tuple[str, ...],
                         digest: str) -> tuple[Server, str]:
    """A gateway in front of ``urls`` with ``kitchen`` installed for a new tenant; returns it and a user token."""
    _private, public = sealing.generate_keypair()
    settings = GatewaySettings(
        runner_base_urls=urls,
        runner_service_token=TOKEN,
        registry_database=str(tmp_path / "registry.sqlite3"),
        bundle_store_base=shared.store_dir.resolve().as_uri(),
        admin_token=ADMIN,
        runner_secrets_public_key=public,
        timeout_ms=TIMEOUT_MS,
    )
    gateway = await start_gateway(nursery, create_app(settings))
    tenant = f"acme-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=gateway.url, headers={"authorization": f"Bearer {ADMIN}"}) as admin:
        async def post(path: str, body: Any) -> Any:
            resp = await admin.post(path, json=body)
            assert resp.status_code in (200, 201), resp.text
            return resp.json()

        await post("/api/v1/extensions", {"content_hash": digest, "extension_id": "kitchen"})
        await post("/api/v1/tenants", {"id": tenant, "name": "Acme"})
        user = await post(f"/api/v1/tenants/{tenant}/users", {"email": "ops@acme.test", "name": "Ops",
                                                             "roles": ["member"]})
        token = await post(f"/api/v1/users/{user['id']}/tokens", {"name": "load"})
        await post(f"/api/v1/tenants/{tenant}/installs",
                   {"extension_id": "kitchen", "granted_capabilities": ["cap:http.fetch"]})
    return gateway, token["token"]


@pytest.mark.timeout(300)  # a loaded machine compiles the JS guest in about a minute
async def test_sigkill_mid_load_runs_each_keyed_guest_at_most_once(
    nursery: trio.Nursery, runners: Any, shared: Shared, tmp_path: Path
) -> None:
    hits: collections.Counter[str] = collections.Counter()
    serial = 0
    half_running = trio.Event()  # about half of the guests run on the doomed runner

    async def counter(req: Req) -> Resp:
        nonlocal serial
        serial += 1
        hits[req.path.removeprefix("/hit/")] += 1
        if serial >= KEYS // 2:
            half_running.set()
        await trio.sleep(GUEST_HOLD_S)
        return Resp(200, [("content-type", "text/plain")], f"run #{serial}".encode())

    upstream = await start_upstream(nursery, counter)
    store = open_store(shared.store_dir.resolve().as_uri())
    try:
        digest = await publish_bundle(store, pack_directory(stage_sample("js-kitchen-sink", shared.work)))
    finally:
        await store.aclose()
    doomed, survivor = runners("doomed", upstream.port), runners("survivor", upstream.port)
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}, timeout=180) as direct:
        for runner in (doomed, survivor):
            await runner.ready(direct)
            warm = await direct.post(f"{runner.url}/v1/warmup", json={"content_hash": digest})
            assert warm.status_code == 200, warm.text
    gateway, token = await _setup_gateway(nursery, tmp_path, shared, (doomed.url, survivor.url), digest)

    keys = [f"order-{i}-{uuid.uuid4().hex[:6]}" for i in range(KEYS)]

    async def call(client: httpx.AsyncClient, key: str, answers: dict[str, httpx.Response]) -> None:
        answers[key] = await client.post("/api/ext/kitchen/http", json={"url": f"{upstream.url}/hit/{key}"},
                                         headers={"idempotency-key": key})

    first: dict[str, httpx.Response] = {}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60,
                                 headers={"authorization": f"Bearer {token}"}) as client:
        async with trio.open_nursery() as load:
            for key in keys:
                load.start_soon(call, client, key, first)
            with trio.fail_after(30):
                await half_running.wait()
            doomed.kill()

        await trio.sleep(TIMEOUT_MS / 1000 + 1.5)  # every claim of the dead runner is past its lease
        second: dict[str, httpx.Response] = {}
        async with trio.open_nursery() as retries:  # the clients retry every key
            for key in keys:
                retries.start_soon(call, client, key, second)
    await gateway.close()

    assert all(count == 1 for count in hits.values()), f"a keyed guest ran twice: {hits}"
    succeeded = [key for key in keys if first[key].status_code == 200]
    lost = [key for key in keys if first[key].status_code != 200]
    assert succeeded, "the surviving runner kept serving"
    assert lost, "the kill landed while guests ran"
    assert {first[key].status_code for key in lost} <= {502, 504}
    for key in succeeded:  # the retry replays the answer: the same run of the guest
        assert second[key].status_code == 200
        assert second[key].json() == first[key].json()
        assert second[key].json()["bodyText"].startswith("run #")
    for key in lost:  # claimed by the dead runner: never run again under this key
        assert second[key].status_code == 502, second[key].text
    assert sum(hits.values()) <= KEYS
