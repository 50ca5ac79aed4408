"""SIGTERM drains: ``python -m runner_trio`` finishes the request in flight, refuses new ones, then exits 0."""

from __future__ import annotations

import base64
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import httpx
import trio

from bundles import pack_directory, publish_bundle
from bundles.store import open_store
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
