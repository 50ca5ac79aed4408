"""The gateway over several runners: rendezvous hashing on the content hash, health-checked order, DNS discovery."""

from __future__ import annotations

from collections import Counter

import trio

from gateway_quart._runner_pool import RunnerPool

from ._helpers import FakeRunner
from .conftest import GatewayFactory

URLS = ("http://r1:8080", "http://r2:8080", "http://r3:8080")
KEYS = [f"{i:064x}" for i in range(300)]


async def test_content_hash_affinity_is_stable_spread_and_moves_only_the_removed_runners_share() -> None:
    three = RunnerPool(URLS, affinity="content-hash")
    two = RunnerPool(URLS[:2], affinity="content-hash")
    first = {key: three.order(key)[0] for key in KEYS}
    assert all(three.order(key)[0] == first[key] for key in KEYS), "the same bundle, the same runner first"
    shares = Counter(first.values())
    assert set(shares) == set(URLS)
    assert min(shares.values()) > len(KEYS) / 6, shares  # spread, not all on one
    moved = [key for key in KEYS if first[key] != URLS[2] and two.order(key)[0] != first[key]]
    assert moved == [], "removing r3 moves only the bundles r3 had"
    for key in KEYS:  # every runner is still in the order, for failover
        assert sorted(three.order(key)) == sorted(URLS)


async def test_round_robin_rotates_and_cooling_runners_go_last() -> None:
    pool = RunnerPool(URLS)
    firsts = [pool.order()[0] for _ in range(6)]
    assert Counter(firsts) == {url: 2 for url in URLS}
    pool.cool(URLS[0], 60)
    assert all(pool.order()[-1] == URLS[0] for _ in range(3))


async def test_dns_discovery_makes_one_member_per_address_and_keeps_them_when_dns_fails() -> None:
    answers: dict[str, list[str]] = {"runners.ns.svc": ["10.0.0.7", "10.0.0.5"]}

    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError("no such name")
        return answers[host]

    pool = RunnerPool(("http://runners.ns.svc:8080",), discovery="dns", resolve=resolve)
    await pool.discover()
    assert set(pool.members) == {"http://10.0.0.7:8080", "http://10.0.0.5:8080"}
    answers["runners.ns.svc"] = ["10.0.0.5", "10.0.0.9", "fd00::1"]
    await pool.discover()
    assert set(pool.members) == {"http://10.0.0.5:8080", "http://10.0.0.9:8080", "http://[fd00::1]:8080"}
    answers.clear()
    await pool.discover()
    assert len(pool.members) == 3


async def _polled(runner: FakeRunner) -> None:
    """Until a health poll round that saw the runner's current state has been applied: the second probe from now
    belongs to a round that started after the previous round (the first probe's, at the latest) finished."""
    seen = runner.readyz_calls
    with trio.fail_after(30):
        while runner.readyz_calls < seen + 2:  # noqa: ASYNC110 - the counter lives in another app
            await trio.sleep(0.01)


async def test_a_runner_that_is_not_ready_gets_no_calls_while_another_is(make_gateway: GatewayFactory,
                                                                          nursery: trio.Nursery) -> None:
    from ._helpers import start_runner

    sick, healthy = FakeRunner(ready=False), FakeRunner()
    sick_server = await start_runner(nursery, sick)
    healthy_server = await start_runner(nursery, healthy)
    gateway = await make_gateway(runner_urls=(sick_server.url, healthy_server.url), runner_health_interval_s=0.05)
    await gateway.register(await gateway.publish("v1"))
    tenant = await gateway.tenant("acme")
    await gateway.install("acme")
    await _polled(sick)
    for _ in range(6):
        response = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
        assert response.status_code == 200, response.text
    assert (len(sick.calls), len(healthy.calls)) == (0, 6)
    sick.ready = True
    await _polled(sick)
    for _ in range(6):
        await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert len(sick.calls) == 3  # round robin again once it is ready
    await sick_server.close()
    await healthy_server.close()
