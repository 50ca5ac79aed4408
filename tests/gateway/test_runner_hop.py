"""The gateway -> runner hop: mapping runner failures, deadlines, retries across runners."""

from __future__ import annotations

from typing import Any

import trio

from ._helpers import FakeRunner, RunnerReply, start_runner
from .conftest import Gateway, GatewayFactory, Tenant


async def _ready(gateway: Gateway) -> Tenant:
    await gateway.register(await gateway.publish("v1"))
    tenant = await gateway.tenant("acme")
    await gateway.install("acme")
    return tenant


async def test_guest_status_passes_through(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    gateway.runner.reply = lambda _: RunnerReply(status=418, headers={"content-type": "text/plain"}, body=b"teapot")
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert (resp.status_code, resp.text, resp.headers["content-type"]) == (418, "teapot", "text/plain")
    gateway.runner.reply = lambda _: RunnerReply(status=503, body=None)  # the guest's own 503: no retry
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert (resp.status_code, resp.content) == (503, b"")
    assert len(gateway.runner.calls) == 2


async def test_runner_error_is_bad_gateway(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    gateway.runner.reply = lambda _: RunnerReply(status=500, error="execute_failed: trap", body=None)
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 502
    assert resp.json() == {"error": "bad_gateway", "requestId": resp.headers["x-request-id"]}


async def test_runner_timeout_is_gateway_timeout(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    gateway.runner.reply = lambda _: RunnerReply(status=504, error="execute_failed: timeout", body=None)
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 504
    assert resp.json()["error"] == "gateway_timeout"
    assert len(gateway.runner.calls) == 1  # a timeout is not retried


async def test_runner_overload_is_429_with_retry_after(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    gateway.runner.reply = lambda _: RunnerReply(status=429, error="overloaded", body=None,
                                                 headers={"retry-after": "7"})
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "7"
    assert resp.json()["error"] == "overloaded"


async def test_runner_refusing_the_service_token_is_bad_gateway(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    gateway.runner.reply = lambda _: RunnerReply(http_status=401)
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 502
    assert len(gateway.runner.calls) == 1


async def test_slow_runner_hits_the_gateway_deadline(make_gateway: GatewayFactory) -> None:
    runner = FakeRunner(reply=lambda _: RunnerReply(delay_s=5))
    gateway = await make_gateway(runner=runner, timeout_ms=200)
    tenant = await _ready(gateway)
    with trio.fail_after(4):  # deadline 0.2 s plus the gateway's 1 s grace, generously bounded
        resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 504
    assert resp.json()["error"] == "gateway_timeout"
    assert runner.calls[0]["body"]["limits"] == {"timeout_ms": 200}


async def test_stopped_runner_is_skipped_for_the_next(nursery: trio.Nursery, make_gateway: GatewayFactory) -> None:
    dead, alive = FakeRunner(), FakeRunner()
    dead_server = await start_runner(nursery, dead)
    alive_server = await start_runner(nursery, alive)
    await dead_server.close()
    gateway = await make_gateway(runner_urls=(dead_server.url, alive_server.url))
    tenant = await _ready(gateway)
    for _ in range(3):
        resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
        assert resp.status_code == 200
    # Nothing reached the stopped runner, so even a non-GET without a key may move on.
    resp = await gateway.client.post("/api/ext/echo/items", json={}, headers=tenant.auth)
    assert resp.status_code == 200
    assert len(alive.calls) == 4
    assert dead.calls == []


def _fail_then(statuses: list[int]) -> Any:
    def reply(_: dict[str, Any]) -> RunnerReply:
        status = statuses.pop(0) if statuses else 200
        return RunnerReply(http_status=status)

    return reply


async def test_unkeyed_post_is_not_retried(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    gateway.runner.reply = _fail_then([503, 503, 503])
    resp = await gateway.client.post("/api/ext/echo/items", json={}, headers=tenant.auth)
    assert resp.status_code == 502
    assert resp.json()["error"] == "bad_gateway"
    assert len(gateway.runner.calls) == 1


async def test_keyed_post_and_get_are_retried(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    gateway.runner.reply = _fail_then([503, 502])
    resp = await gateway.client.post("/api/ext/echo/items", json={},
                                     headers={**tenant.auth, "idempotency-key": "k-1"})
    assert resp.status_code == 200
    assert [c["headers"]["x-idempotency-key"] for c in gateway.runner.calls] == ["k-1"] * 3

    gateway.runner.calls.clear()
    gateway.runner.reply = _fail_then([504, 504, 504, 504])
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 502
    assert len(gateway.runner.calls) == 3  # GATEWAY_RUNNER_ATTEMPTS default
    assert len({c["headers"]["x-request-id"] for c in gateway.runner.calls}) == 1


async def test_runner_bundle_failure_is_retried_on_another_runner(nursery: trio.Nursery,
                                                                  make_gateway: GatewayFactory) -> None:
    broken = FakeRunner(reply=lambda _: RunnerReply(status=502, error="bundle_fetch_failed: store down", body=None))
    healthy = FakeRunner()
    broken_server = await start_runner(nursery, broken)
    healthy_server = await start_runner(nursery, healthy)
    gateway = await make_gateway(runner_urls=(broken_server.url, healthy_server.url))
    tenant = await _ready(gateway)
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 200
    assert (len(broken.calls), len(healthy.calls)) == (1, 1)
