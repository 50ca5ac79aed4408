"""``gateway_quart.serve``: started in a nursery on port 0 like the runner, answering, draining on shutdown;
a draining runner behind it is skipped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

import sealing
from gateway_quart import Settings, SettingsError, serve
from servicekit import serve_app
from tests._http1 import RawConnection
from tests._net import free_port

from ._helpers import FakeRunner, RunnerReply, start_runner
from .conftest import ADMIN_TOKEN, SERVICE_TOKEN, Gateway, GatewayFactory


def _settings(tmp_path: Path, runner_url: str, **overrides: object) -> tuple[Settings, str]:
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    private_key, public_key = sealing.generate_keypair()
    env = {
        "RUNNER_BASE_URL": runner_url,
        "GATEWAY_BIND": "127.0.0.1:0",
        "REGISTRY_DATABASE": str(tmp_path / "registry.sqlite3"),
        "BUNDLE_STORE_BASE": f"file://{store_dir}",
        "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
        "RUNNER_SERVICE_TOKEN": SERVICE_TOKEN,
        "RUNNER_SECRETS_PUBLIC_KEY": public_key,
        "GATEWAY_DRAIN_TIMEOUT_S": "10",
        **{k: str(v) for k, v in overrides.items()},
    }
    return Settings.from_env(env), private_key


async def test_serves_on_the_reported_address_and_drains_calls_in_flight(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    runner = FakeRunner()
    runner_server = await start_runner(nursery, runner)
    settings, private_key = _settings(tmp_path, runner_server.url)
    assert settings.drain_timeout_s == 10
    shutdown = trio.Event()
    results: dict[str, object] = {}
    with trio.fail_after(30):
        # Connection: close, because Hypercorn's drain also waits (up to the drain timeout) for idle keep-alive
        # connections: the test is about the call in flight.
        async with httpx.AsyncClient(timeout=10, headers={"connection": "close"}) as client:
            async with trio.open_nursery() as serving:
                binds: list[str] = await serving.start(partial(serve, settings, shutdown=shutdown))
                url = binds[0]
                assert url.startswith("http://127.0.0.1:")
                assert not url.endswith(":0")
                client.base_url = httpx.URL(url)
                assert (await client.get("/readyz")).json() == {"status": "ready"}

                gateway = Gateway(url, client, settings, runner, runner_server, tmp_path / "store", tmp_path,
                                  private_key)
                await gateway.register(await gateway.publish("v1"))
                tenant = await gateway.tenant("acme")
                await gateway.install("acme")
                runner.reply = lambda _: RunnerReply(delay_s=0.5)

                async def call() -> None:
                    response = await client.get("/api/ext/echo/items", headers=tenant.auth)
                    results["call"] = response.status_code

                serving.start_soon(call)
                await trio.sleep(0.2)
                shutdown.set()
            # serve returned, and only after the call in flight was answered.
            assert results["call"] == 200
            assert len(runner.calls) == 1
            with pytest.raises(httpx.TransportError):
                await client.get("/readyz")
    await runner_server.close()


async def test_cancelling_stops_the_gateway(nursery: trio.Nursery, tmp_path: Path) -> None:
    runner_server = await start_runner(nursery, FakeRunner())
    settings, _ = _settings(tmp_path, runner_server.url, GATEWAY_DRAIN_TIMEOUT_S=30)
    with trio.fail_after(10):
        async with httpx.AsyncClient(timeout=10) as client:
            async with trio.open_nursery() as serving:
                binds: list[str] = await serving.start(serve, settings)
                assert (await client.get(f"{binds[0]}/healthz")).status_code == 200
                serving.cancel_scope.cancel()
            with pytest.raises(httpx.TransportError):
                await client.get(f"{binds[0]}/healthz")
    await runner_server.close()


def test_drain_timeout_is_a_setting() -> None:
    base = {"RUNNER_BASE_URL": "http://127.0.0.1:8001"}
    assert Settings.from_env(base).drain_timeout_s == 10
    assert Settings.from_env({**base, "GATEWAY_DRAIN_TIMEOUT_S": "0"}).drain_timeout_s == 0
    assert Settings.from_env({**base, "GATEWAY_DRAIN_TIMEOUT_S": " "}).drain_timeout_s == 10
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**base, "GATEWAY_DRAIN_TIMEOUT_S": "-1"})
    assert info.value.setting == "GATEWAY_DRAIN_TIMEOUT_S"


async def test_an_idle_gateway_exits_at_once_on_sigterm_with_a_keep_alive_connection_open(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "EXT_GATEWAY_", "RUNNER_"))}
    env |= {"RUNNER_BASE_URL": "http://127.0.0.1:9", "REGISTRY_DATABASE": str(tmp_path / "reg.sqlite3"),
            "GATEWAY_BIND": f"127.0.0.1:{port}", "GATEWAY_DRAIN_TIMEOUT_S": "30"}
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "gateway.log").open("wb") as log:
        process = await trio.lowlevel.open_process([sys.executable, "-m", "gateway_quart"], env=env,
                                                   stdout=log, stderr=subprocess.STDOUT)
        try:
            with trio.fail_after(30):
                while True:
                    try:
                        idle = await RawConnection.open(url)
                        break
                    except OSError:
                        await trio.sleep(0.1)
                assert await idle.send_head("GET", "/healthz", {})
                response = await idle.read_response()
                assert response is not None
                assert response.status == 200
                assert "connection" not in response.headers  # kept alive
                started = trio.current_time()
                process.send_signal(signal.SIGTERM)
                returncode = await process.wait()
                took = trio.current_time() - started
                await idle.aclose()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert returncode == 0
    assert took < 2, f"an idle gateway took {took:.1f} s to exit (drain timeout 30 s)"


async def test_while_draining_old_connections_get_503_at_once_and_the_call_in_flight_completes(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    runner = FakeRunner()
    runner_server = await start_runner(nursery, runner)
    settings, private_key = _settings(tmp_path, runner_server.url, GATEWAY_DRAIN_TIMEOUT_S=30)
    shutdown = trio.Event()
    results: dict[str, httpx.Response] = {}
    with trio.fail_after(30):
        async with httpx.AsyncClient(timeout=10) as client:
            async with trio.open_nursery() as serving:
                binds: list[str] = await serving.start(partial(serve, settings, shutdown=shutdown))
                url = binds[0]
                client.base_url = httpx.URL(url)
                gateway = Gateway(url, client, settings, runner, runner_server, tmp_path / "store", tmp_path,
                                  private_key)
                await gateway.register(await gateway.publish("v1"))
                tenant = await gateway.tenant("acme")
                await gateway.install("acme")
                old = await RawConnection.open(url)
                assert await old.send_head("GET", "/healthz", {})
                response = await old.read_response()
                assert response is not None
                assert response.status == 200
                arrived = trio.Event()

                def slow(_: object) -> RunnerReply:
                    arrived.set()
                    return RunnerReply(delay_s=1.5)

                runner.reply = slow

                async def call() -> None:
                    results["call"] = await client.post("/api/ext/echo/items", json={}, headers=tenant.auth)

                serving.start_soon(call)
                await arrived.wait()
                started = trio.current_time()
                shutdown.set()
                await trio.sleep(0.1)
                assert await old.send_head("GET", "/readyz", {})
                refused = await old.read_response()
                assert trio.current_time() - started < 1, "the 503 came at once, not after the drain"
                assert refused is not None
                assert refused.status == 503
                assert refused.headers["connection"] == "close"
                assert "retry-after" in refused.headers
                assert json.loads(refused.body)["error"] == "draining"
                assert await old.closed_by_server()
                await old.aclose()
            answered = results["call"]
            assert answered.status_code == 200
            assert answered.headers["connection"] == "close"
            assert len(runner.calls) == 1
            assert trio.current_time() - started < 5, "serve returned once the call was answered"
    await runner_server.close()


async def test_a_draining_runner_is_skipped_for_every_request(
    nursery: trio.Nursery, make_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A runner's 503 ``draining`` means the call was never started: even an unkeyed POST moves to the next
    runner, and the draining one sits out the cooldown."""
    held_call = trio.Event()

    def hold(_: object) -> RunnerReply:
        held_call.set()
        return RunnerReply(delay_s=10)

    draining, healthy = FakeRunner(reply=hold), FakeRunner()
    stop_draining = trio.Event()
    binds: list[str] = await nursery.start(partial(
        serve_app, draining.app(), bind="127.0.0.1:0", drain_timeout=30, name="draining runner",
        shutdown=stop_draining, signals=()))
    draining_url = binds[0]
    healthy_server = await start_runner(nursery, healthy)
    gateway = await make_gateway(runner_urls=(draining_url, healthy_server.url))
    await gateway.register(await gateway.publish("v1"))
    tenant = await gateway.tenant("acme")
    await gateway.install("acme")
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=draining_url, timeout=30) as direct, trio.open_nursery() as held:
            # A call in flight keeps the runner in its drain while the gateway's calls arrive.
            held.start_soon(partial(direct.post, "/v1/execute", json={"http": {}}))
            await held_call.wait()
            stop_draining.set()
            for _ in range(4):
                resp = await gateway.client.post("/api/ext/echo/items", json={}, headers=tenant.auth)
                assert resp.status_code == 200
            assert len(healthy.calls) == 4
            assert len(draining.calls) == 1, "the draining runner started none of the gateway's calls"
            held.cancel_scope.cancel()
    retries = [r for r in caplog.records if "runner draining" in r.getMessage()]
    assert len(retries) == 1, "after its first 503 the draining runner cools down"
