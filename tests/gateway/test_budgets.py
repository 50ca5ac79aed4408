"""Tenant budgets in admission: a tenant over a budget gets 429 ``quota_exceeded`` before any runner is called,
while another tenant is unaffected; budgets are the global admin's to set; with ``GATEWAY_REDIS_URL`` the
counters are the fleet's. Periods are days here, so that no test straddles a period boundary it did not plan."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest

from contract import ExecuteResult
from gateway_quart import QuotaExceeded, RegistryError
from gateway_quart._budgets import BudgetGuard
from gateway_quart._fleet import FleetState
from gateway_quart.registry import Budget, SqliteRegistry
from tests._redis import RedisServer, running_redis

from ._helpers import FakeRunner, RunnerReply
from .conftest import Gateway, GatewayFactory, Tenant


async def _two_tenants(gateway: Gateway) -> tuple[Tenant, Tenant]:
    await gateway.register(await gateway.publish("v1"))
    acme, globex = await gateway.tenant("acme"), await gateway.tenant("globex")
    await gateway.install("acme")
    await gateway.install("globex")
    return acme, globex


async def _budgets(gateway: Gateway, tenant_id: str, *budgets: tuple[str, str, float]) -> Any:
    body = {"budgets": [{"name": n, "period": p, "limit": limit} for n, p, limit in budgets]}
    return await gateway.admin_put(f"/api/v1/tenants/{tenant_id}/budgets", body, expect=200)


async def test_a_tenant_over_its_invocation_budget_is_refused_while_another_is_not(gateway: Gateway) -> None:
    acme, globex = await _two_tenants(gateway)
    await _budgets(gateway, "acme", ("invocations", "day", 3))
    statuses = [(await gateway.client.get("/api/ext/echo/items", headers=acme.auth)).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert len(gateway.runner.calls) == 3  # refused before the runner

    refused = await gateway.client.get("/api/ext/echo/items", headers=acme.auth)
    body = refused.json()
    assert refused.status_code == 429
    assert {k: body[k] for k in ("error", "budget", "limit", "used", "period")} == {
        "error": "quota_exceeded", "budget": "invocations", "limit": 3, "used": 3, "period": "day"}
    assert 1 <= body["retry_after_s"] <= 86400
    assert refused.headers["retry-after"] == str(body["retry_after_s"])

    for _ in range(5):
        assert (await gateway.client.get("/api/ext/echo/items", headers=globex.auth)).status_code == 200


async def test_a_guest_cpu_budget_counts_what_answers_report(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(FakeRunner(reply=lambda call: RunnerReply(usage={"guest_cpu_ms": 2.5})))
    acme, globex = await _two_tenants(gateway)
    await _budgets(gateway, "acme", ("guest_cpu_ms", "day", 5), ("egress_bytes", "day", 1_000_000))
    assert (await gateway.client.get("/api/ext/echo/items", headers=acme.auth)).status_code == 200
    assert (await gateway.client.get("/api/ext/echo/items", headers=acme.auth)).status_code == 200
    refused = await gateway.client.get("/api/ext/echo/items", headers=acme.auth)
    assert (refused.status_code, refused.json()["budget"], refused.json()["used"]) == (429, "guest_cpu_ms", 5)
    assert (await gateway.client.get("/api/ext/echo/items", headers=globex.auth)).status_code == 200


async def test_usage_before_the_budget_was_set_counts(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(FakeRunner(reply=lambda call: RunnerReply(usage={"egress_bytes": 400})))
    acme, _ = await _two_tenants(gateway)
    for _ in range(3):
        assert (await gateway.client.get("/api/ext/echo/items", headers=acme.auth)).status_code == 200
    await _budgets(gateway, "acme", ("egress_bytes", "day", 1000), ("invocations", "day", 100))
    refused = await gateway.client.get("/api/ext/echo/items", headers=acme.auth)
    assert (refused.status_code, refused.json()["budget"], refused.json()["used"]) == (429, "egress_bytes", 1200)


async def test_lifting_a_budget_admits_again_at_once(gateway: Gateway) -> None:
    acme, _ = await _two_tenants(gateway)
    await _budgets(gateway, "acme", ("invocations", "day", 1))
    assert (await gateway.client.get("/api/ext/echo/items", headers=acme.auth)).status_code == 200
    assert (await gateway.client.get("/api/ext/echo/items", headers=acme.auth)).status_code == 429
    await _budgets(gateway, "acme")  # no budgets
    assert (await gateway.client.get("/api/ext/echo/items", headers=acme.auth)).status_code == 200


async def test_budgets_are_set_by_the_global_admin_and_read_by_the_tenant(gateway: Gateway) -> None:
    await gateway.tenant("acme")
    admin = await gateway.user("acme", roles=["admin"], email="boss@example.com")
    globex = await gateway.tenant("globex", roles=["admin"])
    stored = await _budgets(gateway, "acme", ("invocations", "minute", 100), ("egress_bytes", "day", 5e6))
    assert stored["budgets"] == [
        {"name": "egress_bytes", "period": "day", "limit": 5000000, "period_s": 86400},
        {"name": "invocations", "period": "minute", "limit": 100, "period_s": 60}]

    read = await gateway.client.get("/api/v1/tenants/acme/budgets", headers=admin.auth)
    assert (read.status_code, read.json()) == (200, stored)
    own_change = await gateway.client.put("/api/v1/tenants/acme/budgets", json={"budgets": []}, headers=admin.auth)
    assert (own_change.status_code, own_change.json()["error"]) == (403, "admin_token_required")
    foreign = await gateway.client.get("/api/v1/tenants/acme/budgets", headers=globex.auth)
    assert foreign.status_code == 404
    missing = await gateway.client.put("/api/v1/tenants/nobody/budgets", json={"budgets": []}, headers=gateway.admin)
    assert (missing.status_code, missing.json()["error"]) == (404, "tenant_not_found")


@pytest.mark.parametrize(("body", "field"), [
    ({}, "budgets"),
    ({"budgets": "lots"}, "budgets"),
    ({"budgets": [{"name": "cpu", "period": "day", "limit": 1}]}, "budgets[0].name"),
    ({"budgets": [{"name": "invocations", "period": "week", "limit": 1}]}, "budgets[0].period"),
    ({"budgets": [{"name": "invocations", "period": "day", "limit": -1}]}, "budgets[0].limit"),
    ({"budgets": [{"name": "invocations", "period": "day"}]}, "budgets[0].limit"),
    ({"budgets": ["x"]}, "budgets[0]"),
    ({"budgets": [{"name": "invocations", "period": "day", "limit": True}]}, "budgets[0].limit"),
    ({"budgets": [{"name": "invocations", "period": "day", "limit": 1, "x": 1}]}, "budgets[0].x"),
    ({"budgets": [{"name": "invocations", "period": "day", "limit": 1}] * 2}, "budgets[1]"),
    ({"budgets": [], "extra": 1}, "extra"),
])
async def test_bad_budgets_name_the_field(gateway: Gateway, body: dict[str, Any], field: str) -> None:
    await gateway.tenant("acme")
    resp = await gateway.client.put("/api/v1/tenants/acme/budgets", json=body, headers=gateway.admin)
    assert resp.status_code == 400
    assert field in resp.json()["fields"]


# -- a fleet -----------------------------------------------------------------------------------------------------


async def test_the_budget_is_the_fleets_with_redis(
    make_gateway: GatewayFactory, postgres_url: str, redis_server: RedisServer
) -> None:
    settings = {"registry_database": postgres_url, "redis_url": redis_server.url}
    first, second = await make_gateway(**settings), await make_gateway(**settings)
    await first.register(await first.publish("v1"))
    tenant_id = f"t-{uuid.uuid4().hex[:8]}"  # its own counters in the shared Redis
    tenant = await first.tenant(tenant_id)
    await first.install(tenant_id)
    await _budgets(first, tenant_id, ("invocations", "day", 4))
    statuses = []
    for n in range(8):
        gateway = (first, second)[n % 2]
        statuses.append((await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)).status_code)
    assert sorted(statuses) == [200] * 4 + [429] * 4  # alone, each gateway would have let four through
    assert len(first.runner.calls) + len(second.runner.calls) == 4


async def test_without_redis_budgets_fall_back_to_each_gateways_counters(
    make_gateway: GatewayFactory, postgres_url: str
) -> None:
    with running_redis() as redis:
        gateway = await make_gateway(registry_database=postgres_url, redis_url=redis.url)
        acme, globex = await _two_tenants(gateway)
        await _budgets(gateway, "acme", ("invocations", "day", 2))
        redis.stop()
        statuses = [(await gateway.client.get("/api/ext/echo/items", headers=acme.auth)).status_code
                    for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert (await gateway.client.get("/api/ext/echo/items", headers=globex.auth)).status_code == 200


async def test_a_fleet_counter_starts_at_what_the_registry_billed(
    make_gateway: GatewayFactory, postgres_url: str, redis_server: RedisServer
) -> None:
    settings = {"registry_database": postgres_url, "redis_url": redis_server.url}
    first, second = await make_gateway(**settings), await make_gateway(**settings)
    await first.register(await first.publish("v1"))
    tenant_id = f"t-{uuid.uuid4().hex[:8]}"
    tenant = await first.tenant(tenant_id)
    await first.install(tenant_id)
    for _ in range(3):
        assert (await first.client.get("/api/ext/echo/items", headers=tenant.auth)).status_code == 200
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    usage = await first.client.get("/api/v1/usage", params={"tenant": tenant_id, "from": since,
                                                            "granularity": "day"}, headers=first.admin)
    assert usage.json()["totals"]["invocations"] == 3  # written to the registry (the usage API flushes first)
    await _budgets(first, tenant_id, ("invocations", "day", 3))
    for gateway in (second, first):  # the second seeds the fleet's counter from the registry; the first reads it
        refused = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
        assert (refused.status_code, refused.json()["used"]) == (429, 3)


# -- the guard on its own ----------------------------------------------------------------------------------------

NOON: Final = 1_780_056_000.0  # 2026-05-29T12:00:00Z, a whole day


async def test_measured_usage_pushed_by_one_gateway_refuses_on_another(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    registry = await SqliteRegistry.open(str(tmp_path / "r.sqlite3"))
    tenant_id = f"t-{uuid.uuid4().hex[:8]}"
    await registry.create_tenant(tenant_id, "T")
    await registry.set_budgets(tenant_id, [Budget("guest_cpu_ms", "minute", 100)])
    fleet = [FleetState(redis_server.url), FleetState(redis_server.url)]
    clock = lambda: NOON + 30.5  # noqa: E731 - half a minute into 12:00
    one, two = (BudgetGuard(registry, fleet=f, clock=clock) for f in fleet)
    await one.admit(tenant_id)
    one.consume(tenant_id, ExecuteResult(200, {}, b"", None, usage={"guest_cpu_ms": 150.0}))
    await two.admit(tenant_id)  # nothing pushed yet: the fleet's counter is still under the limit
    await one.flush()
    with pytest.raises(QuotaExceeded) as refused:
        await two.admit(tenant_id)
    assert refused.value.body()["used"] == 150
    assert refused.value.retry_after_s == 30  # until 12:01:00
    assert (one.statistics()["refused"], two.statistics()["refused"]) == (0, 1)
    for f in fleet:
        await f.aclose()
    await registry.aclose()


async def test_periods_are_fixed_utc_windows(tmp_path: Path) -> None:
    registry = await SqliteRegistry.open(str(tmp_path / "r.sqlite3"))
    await registry.create_tenant("acme", "Acme")
    await registry.set_budgets("acme", [Budget("invocations", "hour", 1)])
    now = [NOON + 59 * 60]  # 12:59:00
    guard = BudgetGuard(registry, clock=lambda: now[0], cache_ttl_s=0)
    await guard.admit("acme")
    with pytest.raises(QuotaExceeded) as refused:
        await guard.admit("acme")
    assert (refused.value.retry_after_s, refused.value.body()["period"]) == (60, "hour")
    now[0] = NOON + 3600  # 13:00:00: a new hour, a new counter
    await guard.admit("acme")
    await registry.aclose()


async def test_budgets_last_read_hold_while_the_registry_fails(tmp_path: Path) -> None:
    registry = await SqliteRegistry.open(str(tmp_path / "r.sqlite3"))
    await registry.create_tenant("acme", "Acme")
    await registry.set_budgets("acme", [Budget("invocations", "hour", 1)])
    guard = BudgetGuard(registry, clock=lambda: NOON, cache_ttl_s=0)  # every admission reads the registry
    await guard.admit("acme")
    await registry.aclose()  # from now on every registry call fails
    with pytest.raises(QuotaExceeded):
        await guard.admit("acme")
    with pytest.raises(RegistryError):
        await guard.admit("globex")  # never read: nothing to fall back on
