"""``gateway_quart.serve``: started in a nursery on port 0 like the runner, answering, draining on shutdown."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

import sealing
from gateway_quart import Settings, SettingsError, serve

from ._helpers import FakeRunner, RunnerReply, start_runner
from .conftest import ADMIN_TOKEN, SERVICE_TOKEN, Gateway


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
