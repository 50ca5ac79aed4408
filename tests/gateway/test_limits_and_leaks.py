"""The gateway's limits state the runner's real numbers, and its errors never name a runner's address."""

from __future__ import annotations

import json
import urllib.parse

import trio

from contract import MAX_GUEST_BODY_BYTES
from gateway_quart import Settings

from ._helpers import FakeRunner, RunnerReply, never, start_runner
from .conftest import Gateway, GatewayFactory, Tenant
from .test_proxy import _raw_exchange


async def _ready(gateway: Gateway) -> Tenant:
    await gateway.register(await gateway.publish("v1"))
    tenant = await gateway.tenant("acme")
    await gateway.install("acme")
    return tenant


def test_the_default_body_cap_is_the_runners() -> None:
    settings = Settings.from_env({"RUNNER_BASE_URL": "http://127.0.0.1:1"})
    assert settings.max_body_bytes == MAX_GUEST_BODY_BYTES == 2 * 1024 * 1024


async def test_a_3_mb_body_is_refused_naming_the_runners_cap(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(FakeRunner(reply=never))
    tenant = await _ready(gateway)
    status, headers, raw = await _raw_exchange(
        gateway.url, "POST", "/api/ext/echo/items",
        [("authorization", tenant.auth["authorization"]), ("content-length", "3000000")],
        [b"x" * 64 * 1024],  # refused on the declared length: the answer does not wait for the rest
    )
    assert status == 413
    assert headers["content-type"].startswith("application/json")
    body = json.loads(raw)
    assert body["error"] == "payload_too_large"
    assert body["message"] == "request body exceeds 2097152 bytes"
    assert body["limit"] == 2097152


async def test_the_runners_own_refusals_pass_through_with_their_numbers(make_gateway: GatewayFactory) -> None:
    answers = iter([
        RunnerReply(status=413, error="payload_too_large: request body exceeds 1048576 bytes", body=None),
        RunnerReply(status=413, body=None, error="body_too_large_for_memory: the request body (1500000 bytes) "
                    "does not fit the guest's memory: limits.memory_mb is 128; raise limits.memory_mb or "
                    "send a smaller body"),
    ])
    gateway = await make_gateway(FakeRunner(reply=lambda _: next(answers)))
    tenant = await _ready(gateway)
    resp = await gateway.client.post("/api/ext/echo/items", content=b"x" * 1_500_000, headers=tenant.auth)
    assert resp.status_code == 413
    assert resp.json()["message"] == "request body exceeds 1048576 bytes"  # the runner's cap, not the gateway's
    resp = await gateway.client.post("/api/ext/echo/items", content=b"x" * 1_500_000, headers=tenant.auth)
    assert resp.status_code == 413
    assert resp.json()["error"] == "body_too_large_for_memory"
    assert "limits.memory_mb is 128" in resp.json()["message"]


async def test_no_runner_reachable_is_a_502_that_names_no_address(
    nursery: trio.Nursery, make_gateway: GatewayFactory
) -> None:
    dead = await start_runner(nursery, FakeRunner())
    await dead.close()
    gateway = await make_gateway(runner_urls=(dead.url,))
    tenant = await _ready(gateway)
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 502
    assert resp.headers["content-type"].startswith("application/json")
    text = resp.text
    address = urllib.parse.urlsplit(dead.url)
    assert address.hostname is not None
    assert address.port is not None
    assert address.hostname not in text
    assert str(address.port) not in text
    assert "Traceback" not in text
    assert resp.json()["error"] == "bad_gateway"
