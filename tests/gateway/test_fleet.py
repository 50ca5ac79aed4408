"""Two gateways of a fleet: one PostgreSQL registry and one Redis (``GATEWAY_REDIS_URL``) shared.

The rate-limit bucket is the fleet's (N calls across both gateways are limited together), and a token revoked
or an extension uninstalled through one gateway is refused by the other on its very next request, although
that one cached the credential for minutes (the auth cache's TTL is 300 s here: nothing may wait it out).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import trio

from gateway_quart import Settings
from gateway_quart._fleet import FleetState
from tests._redis import RedisServer, running_redis

from .conftest import Gateway, GatewayFactory, Tenant

LONG_TTL_S = 300.0


@pytest.fixture
def fleet_settings(postgres_url: str, redis_server: RedisServer) -> dict[str, Any]:
    return {"registry_database": postgres_url, "redis_url": redis_server.url, "auth_cache_ttl_s": LONG_TTL_S}


async def _two_gateways(make_gateway: GatewayFactory, **settings: Any) -> tuple[Gateway, Gateway, Tenant]:
    first = await make_gateway(**settings)
    second = await make_gateway(**settings)
    await first.register(await first.publish("v1"))
    tenant = await first.tenant(f"t-{uuid.uuid4().hex[:8]}")  # its own bucket in the shared Redis
    await first.install(tenant.id)
    return first, second, tenant


async def test_the_rate_limit_bucket_is_shared_by_the_gateways(
    make_gateway: GatewayFactory, fleet_settings: dict[str, Any]
) -> None:
    # Four tokens, one more per 1000 s: alone, each gateway would let four calls through.
    first, second, tenant = await _two_gateways(make_gateway, **fleet_settings, rate_limit_burst=4,
                                                rate_limit_rps=0.001)
    statuses = []
    for n in range(8):
        gateway = (first, second)[n % 2]
        statuses.append((await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)).status_code)
    assert sorted(statuses) == [200] * 4 + [429] * 4
    assert len(first.runner.calls) + len(second.runner.calls) == 4
    refused = await second.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert refused.json()["error"] == "rate_limited"
    assert 900 <= int(refused.headers["retry-after"]) <= 1000


async def test_a_token_revoked_on_one_gateway_is_refused_by_the_other_at_once(
    make_gateway: GatewayFactory, fleet_settings: dict[str, Any]
) -> None:
    first, second, tenant = await _two_gateways(make_gateway, **fleet_settings)
    minted = await first.admin_post(f"/api/v1/users/{tenant.user_id}/tokens", {"name": "laptop"}, expect=201)
    laptop = {"authorization": f"Bearer {minted['token']}"}
    assert (await second.client.get("/api/v1/me", headers=laptop)).status_code == 200  # now in its cache
    assert (await second.client.get("/api/ext/echo/items", headers=laptop)).status_code == 200

    revoked = await first.client.delete(f"/api/v1/tokens/{minted['id']}", headers=first.admin)
    assert revoked.status_code == 200

    for path in ("/api/v1/me", "/api/ext/echo/items"):
        resp = await second.client.get(path, headers=laptop)
        assert (resp.status_code, resp.json()["error"]) == (401, "invalid_token")
    assert (await second.client.get("/api/v1/me", headers=tenant.auth)).status_code == 200  # others still work


async def test_an_uninstall_on_one_gateway_is_refused_by_the_other_at_once(
    make_gateway: GatewayFactory, fleet_settings: dict[str, Any]
) -> None:
    first, second, tenant = await _two_gateways(make_gateway, **fleet_settings)
    assert (await second.client.get("/api/ext/echo/items", headers=tenant.auth)).status_code == 200  # cached
    calls = len(second.runner.calls)

    removed = await first.client.delete(f"/api/v1/tenants/{tenant.id}/installs/echo", headers=first.admin)
    assert removed.status_code == 204

    resp = await second.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert (resp.status_code, resp.json()["error"]) == (404, "not_installed")
    assert len(second.runner.calls) == calls  # the runner never saw it


async def test_without_redis_the_gateways_refuse_nothing_they_should_not_serve(
    make_gateway: GatewayFactory, postgres_url: str
) -> None:
    # Redis goes away: calls still pass (rate limits fall back to each gateway's buckets), and lookups skip the
    # cache, so a revocation through one gateway still applies on the other at once.
    with running_redis() as redis:
        settings = {"registry_database": postgres_url, "redis_url": redis.url, "auth_cache_ttl_s": LONG_TTL_S}
        first, second, tenant = await _two_gateways(make_gateway, **settings)
        minted = await first.admin_post(f"/api/v1/users/{tenant.user_id}/tokens", {"name": "ci"}, expect=201)
        ci = {"authorization": f"Bearer {minted['token']}"}
        assert (await second.client.get("/api/ext/echo/items", headers=ci)).status_code == 200
        redis.stop()

        assert (await second.client.get("/api/ext/echo/items", headers=ci)).status_code == 200
        assert (await first.client.delete(f"/api/v1/tokens/{minted['id']}", headers=first.admin)).status_code == 200
        resp = await second.client.get("/api/v1/me", headers=ci)
        assert (resp.status_code, resp.json()["error"]) == (401, "invalid_token")


async def test_the_shared_bucket_refills_and_keeps_keys_apart(redis_server: RedisServer) -> None:
    # Two gateways' clients on one bucket: the burst is shared; it refills at the rate (Redis's clock). The rate is
    # one token per 100 s until the refill step, so nothing refills between the calls however slow the machine.
    gateways = [FleetState(redis_server.url) for _ in range(2)]
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    try:
        assert await gateways[0].take_token(tenant, "echo", rate=0.01, burst=2) == 0
        assert await gateways[1].take_token(tenant, "echo", rate=0.01, burst=2) == 0
        assert await gateways[0].take_token(tenant, "other", rate=0.01, burst=2) == 0  # its own bucket
        assert 90 <= await gateways[1].take_token(tenant, "echo", rate=0.01, burst=2) <= 100  # empty: ~100 s
        await trio.sleep(0.05)  # 50 tokens' worth at 1000/s: refilled to the burst by the next call
        assert [await gateways[n % 2].take_token(tenant, "echo", rate=1000.0, burst=2) for n in range(2)] == [0, 0]
    finally:
        for fleet in gateways:
            await fleet.aclose()


def test_the_settings_name_the_fleet_redis() -> None:
    settings = Settings.from_env({"RUNNER_BASE_URL": "http://r:1", "GATEWAY_REDIS_URL": "redis://cache:6379/2"})
    assert settings.redis_url == "redis://cache:6379/2"
