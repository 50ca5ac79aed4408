"""The gateway's ``/metrics``: for the metrics token only; proxied calls by status, runner failures, backlogs."""

from __future__ import annotations

from functools import partial

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

from ._helpers import RunnerReply
from .conftest import Gateway, GatewayFactory

METRICS_TOKEN = "metrics-token-0123456789"
SCRAPER = {"authorization": f"Bearer {METRICS_TOKEN}"}


async def _scrape(gateway: Gateway) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    resp = await gateway.client.get("/metrics", headers=SCRAPER)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(resp.text) for sample in family.samples}


def _requests(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], status: int) -> float:
    return samples.get(("gateway_proxy_requests_total", frozenset({("status", str(status))})), 0.0)


async def test_metrics_are_for_the_metrics_token_only(make_gateway: GatewayFactory) -> None:
    closed = await make_gateway()
    resp = await closed.client.get("/metrics", headers=SCRAPER)
    assert (resp.status_code, resp.json()["error"]) == (403, "metrics_disabled"), "unset: off, for everyone"

    gateway = await make_gateway(metrics_token=METRICS_TOKEN)
    for headers in ({}, gateway.admin, {"authorization": "Bearer wrong-token-0123456789"}):
        resp = await gateway.client.get("/metrics", headers=headers)
        assert (resp.status_code, resp.json()["error"]) == (401, "unauthorized"), headers
        assert resp.headers["www-authenticate"].startswith("Bearer")
    samples = await _scrape(gateway)
    assert samples[("gateway_proxy_inflight", frozenset())] == 0
    assert samples[("gateway_audit_pending_statuses", frozenset())] == 0


async def test_proxied_calls_are_counted_by_status_and_runner_failures_by_code(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(metrics_token=METRICS_TOKEN)
    await gateway.register(await gateway.publish("v1"))
    tenant = await gateway.tenant("acme")
    await gateway.install("acme")
    before = await _scrape(gateway)

    assert (await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)).status_code == 200
    assert (await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)).status_code == 200
    assert (await gateway.client.get("/api/ext/echo/items")).status_code == 401
    assert (await gateway.client.get("/api/ext/other/items", headers=tenant.auth)).status_code == 404
    gateway.runner.reply = lambda _: RunnerReply(status=500, error="execute_failed: trap", body=None)
    assert (await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)).status_code == 502
    gateway.runner.reply = lambda _: RunnerReply(status=429, error="overloaded", body=None)
    assert (await gateway.client.get("/api/ext-proxy/echo/items", headers=tenant.auth)).status_code == 429

    after = await _scrape(gateway)
    for status, count in ((200, 2), (401, 1), (404, 1), (502, 1), (429, 1)):
        assert _requests(after, status) - _requests(before, status) == count, status
    histogram = ("gateway_proxy_request_seconds_count", frozenset())
    assert after[histogram] - before.get(histogram, 0.0) == 6
    for code in ("execute_failed", "overloaded"):
        assert after[("gateway_runner_failures_total", frozenset({("error", code)}))] == 1, code


async def test_a_call_in_flight_is_counted_and_a_client_gone_is_a_499(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(metrics_token=METRICS_TOKEN)
    await gateway.register(await gateway.publish("v1"))
    tenant = await gateway.tenant("acme")
    await gateway.install("acme")
    gateway.runner.reply = lambda _: RunnerReply(delay_s=30)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as impatient, trio.open_nursery() as nursery:
        nursery.start_soon(partial(impatient.get, "/api/ext/echo/items", headers=tenant.auth))
        with trio.fail_after(10):
            while (await _scrape(gateway))[("gateway_proxy_inflight", frozenset())] != 1:  # noqa: ASYNC110
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()  # the client goes away while the runner still works
    with trio.fail_after(10):
        while _requests(samples := await _scrape(gateway), 499) != 1:  # noqa: ASYNC110 - polling another server
            await trio.sleep(0.02)
    assert samples[("gateway_proxy_inflight", frozenset())] == 0
