"""One deadline per call: retries send the runner what is left of it, and the runner's timing reaches the caller."""

from __future__ import annotations

from typing import Any

from ._helpers import FakeRunner, RunnerReply
from .conftest import Gateway, GatewayFactory, Tenant

TIMING = "queue;dur=12.5, load;dur=3.0, guest;dur=40.1"


async def _ready(gateway: Gateway) -> Tenant:
    await gateway.register(await gateway.publish("v1"))
    tenant = await gateway.tenant("acme")
    await gateway.install("acme")
    return tenant


def _slow_failure_then_ok(delay_s: float) -> Any:
    answered: list[int] = []

    def reply(_: dict[str, Any]) -> RunnerReply:
        answered.append(1)
        return RunnerReply(http_status=503, delay_s=delay_s) if len(answered) == 1 else RunnerReply()

    return reply


async def test_a_retry_sends_what_is_left_of_the_deadline(make_gateway: GatewayFactory) -> None:
    runner = FakeRunner(reply=_slow_failure_then_ok(0.4))
    gateway = await make_gateway(runner=runner)
    tenant = await _ready(gateway)
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 200
    first, second = (call["body"]["limits"]["timeout_ms"] for call in runner.calls)
    assert first == 5000
    assert 0 < second <= 5000 - 400, "the first attempt's 0.4 s is spent"


async def test_no_retry_when_too_little_is_left(make_gateway: GatewayFactory) -> None:
    runner = FakeRunner(reply=_slow_failure_then_ok(0.6))
    gateway = await make_gateway(runner=runner, timeout_ms=650)
    tenant = await _ready(gateway)
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 502
    assert resp.json()["error"] == "bad_gateway"
    assert len(runner.calls) == 1, "a retry with under 100 ms left could not finish"


async def test_the_runners_timing_reaches_the_caller(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    gateway.runner.reply = lambda _: RunnerReply(headers={"content-type": "text/plain", "server-timing": "guest;dur=0"},
                                                 body=b"ok", http_headers={"server-timing": TIMING})
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 200
    assert resp.headers.get_list("server-timing") == [TIMING], "the runner's, not the guest's"

    gateway.runner.reply = lambda _: RunnerReply(status=504, error="execute_failed: timeout", body=None,
                                                 http_headers={"server-timing": TIMING})
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 504
    assert resp.headers["server-timing"] == TIMING, "a timeout says where the time went"
