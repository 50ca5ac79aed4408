"""SIGTERM drains: ``python -m runner_trio`` finishes the request in flight, refuses new ones, then exits 0;
idle, it exits at once."""

from __future__ import annotations

import base64
import json
import os
import signal
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import trio

from bundles import pack_directory, publish_bundle
from bundles.store import open_store
from tests._http1 import RawConnection, WireResponse
from tests._net import free_port
from tests.guests.wat import load_wat
from tests.runner.http.conftest import TOKEN, Shared, bundle_dir


async def test_sigterm_drains_in_flight_invocations(shared: Shared, tmp_path: Path) -> None:
    store_url = shared.store_dir.resolve().as_uri()
    store = open_store(store_url)
    digest = await publish_bundle(store, pack_directory(bundle_dir(tmp_path, "sleep", load_wat("sleep"))))
    await store.aclose()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "EXT_"))},
        "RUNNER_BIND": f"127.0.0.1:{port}",
        "RUNNER_VAR_DIR": str(tmp_path / "var"),
        "BUNDLE_STORE_BASE": store_url,
        "EXT_CACHE_ROOT": str(shared.cache_dir),
        "RUNNER_SERVICE_TOKEN": TOKEN,
        "RUNNER_DRAIN_TIMEOUT_S": "10",
    }
    log_path = tmp_path / "runner.log"
    log_file = log_path.open("wb")
    proc = await trio.lowlevel.open_process([sys.executable, "-m", "runner_trio"], env=env,
                                            stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
            with trio.fail_after(30):
                while True:
                    try:
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await trio.sleep(0.1)
            doc = {
                "context": {"tenant_id": "t", "extension_id": "e", "content_hash": digest},
                "http": {"method": "GET", "path": "/",
                         "body_b64": base64.b64encode(struct.pack("<Q", 1_500_000_000)).decode()},
                "limits": {"timeout_ms": 8000},
            }
            headers = {"x-alga-tenant": "t", "x-alga-extension": "e"}
            await client.post("/v1/warmup", json={"content_hash": digest})
            results: dict[str, object] = {}

            async def slow_call() -> None:
                response = await client.post("/v1/execute", json=doc, headers=headers)
                results["slow"] = response.json()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow_call)
                await trio.sleep(0.5)
                proc.send_signal(signal.SIGTERM)
                await trio.sleep(0.3)
                try:
                    async with httpx.AsyncClient(base_url=url, timeout=2) as late:
                        response = await late.get("/healthz")
                    results["late"] = response.status_code
                except httpx.TransportError:
                    results["late"] = "refused"
            slow = results["slow"]
            assert isinstance(slow, dict)
            assert slow["status"] == 200, slow
            assert results["late"] != 200, "no new requests are served while draining"
        with trio.fail_after(20):
            returncode = await proc.wait()
        assert returncode == 0
        assert "draining" in log_path.read_text()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log_file.close()


@dataclass
class RunnerProcess:
    """``python -m runner_trio`` on a free port, healthy, its output in ``log_path``."""

    process: trio.Process
    url: str
    log_path: Path

    async def stop(self) -> tuple[int, float]:
        """SIGTERM, then the exit code and how many seconds the exit took."""
        started = trio.current_time()
        self.process.send_signal(signal.SIGTERM)
        returncode = await self.process.wait()
        return returncode, trio.current_time() - started


@asynccontextmanager
async def runner_process(shared: Shared, tmp_path: Path, name: str = "runner",
                         drain_timeout_s: int = 30) -> AsyncIterator[RunnerProcess]:
    """A runner process; SIGKILLed on the way out if a test left it running."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "EXT_"))},
        "RUNNER_BIND": f"127.0.0.1:{port}",
        "RUNNER_VAR_DIR": str(tmp_path / f"var-{name}"),
        "BUNDLE_STORE_BASE": shared.store_dir.resolve().as_uri(),
        "EXT_CACHE_ROOT": str(shared.cache_dir),
        "RUNNER_SERVICE_TOKEN": TOKEN,
        "RUNNER_DRAIN_TIMEOUT_S": str(drain_timeout_s),
        # One process: these tests time serve_app's drain itself; a runner of several workers (each draining
        # so, under a supervisor) is tried by tests/system/test_drain_under_load.py and test_workers.py.
        "RUNNER_WORKERS": "1",
    }
    log_path = tmp_path / f"{name}.log"
    with log_path.open("wb") as log_file:
        proc = await trio.lowlevel.open_process([sys.executable, "-m", "runner_trio"], env=env,
                                                stdout=log_file, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=url, timeout=5) as client:
                with trio.fail_after(60):
                    while True:
                        try:
                            if (await client.get("/healthz")).status_code == 200:
                                break
                        except httpx.TransportError:
                            await trio.sleep(0.1)
            yield RunnerProcess(proc, url, log_path)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def _publish_sleep(shared: Shared, tmp_path: Path) -> str:
    store = open_store(shared.store_dir.resolve().as_uri())
    try:
        return await publish_bundle(store, pack_directory(bundle_dir(tmp_path, "sleep", load_wat("sleep"))))
    finally:
        await store.aclose()


def _sleep_call(digest: str, seconds: float) -> dict[str, object]:
    return {
        "context": {"tenant_id": "t", "extension_id": "e", "content_hash": digest},
        "http": {"method": "GET", "path": "/",
                 "body_b64": base64.b64encode(struct.pack("<Q", int(seconds * 1e9))).decode()},
        "limits": {"timeout_ms": 20_000},
    }


def _assert_draining(response: WireResponse | None) -> None:
    assert response is not None
    assert response.status == 503
    assert response.headers["content-type"] == "application/json"
    assert response.headers["connection"] == "close"
    assert "retry-after" in response.headers
    assert json.loads(response.body)["error"] == "draining"


async def test_an_idle_runner_exits_at_once_on_sigterm_with_a_keep_alive_connection_open(
    shared: Shared, tmp_path: Path
) -> None:
    async with runner_process(shared, tmp_path) as runner:
        idle = await RawConnection.open(runner.url)
        assert await idle.send_head("GET", "/healthz", {})
        response = await idle.read_response()
        assert response is not None
        assert response.status == 200
        assert "connection" not in response.headers  # kept alive
        with trio.fail_after(20):
            returncode, took = await runner.stop()
        await idle.aclose()
    assert returncode == 0
    assert took < 2, f"an idle runner took {took:.1f} s to exit (drain timeout 30 s)"


async def test_during_the_drain_old_connections_get_503_at_once_and_the_call_in_flight_completes(
    shared: Shared, tmp_path: Path
) -> None:
    digest = await _publish_sleep(shared, tmp_path)
    async with runner_process(shared, tmp_path) as runner:
        auth = {"authorization": f"Bearer {TOKEN}"}
        route = {"x-alga-tenant": "t", "x-alga-extension": "e"}
        async with httpx.AsyncClient(base_url=runner.url, headers=auth, timeout=30) as client:
            assert (await client.post("/v1/warmup", json={"content_hash": digest})).status_code == 200
            old = await RawConnection.open(runner.url)
            assert await old.send_head("GET", "/healthz", {})
            response = await old.read_response()
            assert response is not None
            assert response.status == 200
            results: dict[str, httpx.Response] = {}

            async def slow_call() -> None:
                results["slow"] = await client.post("/v1/execute", json=_sleep_call(digest, 2), headers=route)

            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(slow_call)
                    await trio.sleep(0.5)
                    sigterm_at = trio.current_time()
                    runner.process.send_signal(signal.SIGTERM)
                    await trio.sleep(0.2)
                    body = json.dumps(_sleep_call(digest, 0)).encode()
                    assert await old.send(
                        b"POST /v1/execute HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                        + f"Authorization: Bearer {TOKEN}\r\nX-Alga-Tenant: t\r\nX-Alga-Extension: e\r\n".encode()
                        + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
                    )
                    refused = await old.read_response()
                    assert trio.current_time() - sigterm_at < 1.5, "the 503 came at once, not after the drain"
                    _assert_draining(refused)
                    assert await old.closed_by_server()
                    await old.aclose()
                    probe = await RawConnection.open(runner.url)
                    assert await probe.send_head("GET", "/readyz", {})
                    _assert_draining(await probe.read_response())  # readiness flipped
                    await probe.aclose()
                slow = results["slow"]
                assert slow.status_code == 200
                assert slow.json()["status"] == 200, slow.json()
                assert slow.headers["connection"] == "close"
                answered_at = trio.current_time()
                returncode = await runner.process.wait()
        assert returncode == 0
        assert trio.current_time() - answered_at < 2, "the runner exits once the call in flight is answered"
