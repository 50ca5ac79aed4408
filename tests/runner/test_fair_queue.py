"""The admission queue between tenants: weighted fair (default) or first come, first served, in virtual time.

One global slot, released by the test one grant at a time, makes the grant order observable exactly; the
per-tenant and per-extension caps are set high so that only the shared gate orders the waiters.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from runner_trio import Settings
from runner_trio._admission import Admission, FairGate
from runner_trio._errors import ConfigError, Overloaded


def _admission(discipline: str = "fair", **kwargs: object) -> Admission:
    options: dict[str, object] = {"max_concurrency": 1, "max_per_tenant": 50, "max_per_extension": 50,
                                  "max_queue": 100, "queue_timeout": 1000.0, "discipline": discipline}
    options.update(kwargs)
    return Admission(**options)  # type: ignore[arg-type]


async def _grant_order(admission: Admission, arrivals: list[str]) -> list[str]:
    """Occupy the one slot, queue ``arrivals`` (tenant names, in this order), then release one at a time."""
    order: list[str] = []
    turn = trio.Event()
    gates: list[trio.Event] = []

    async def waiter(tenant: str, index: int) -> None:
        async with admission.slot(tenant, f"{tenant}-ext"):
            order.append(tenant)
            await gates[index].wait()

    async with trio.open_nursery() as nursery:
        async def holder() -> None:
            async with admission.slot("holder", "h"):
                await turn.wait()

        nursery.start_soon(holder)
        await trio.sleep(1)
        for index, tenant in enumerate(arrivals):
            gates.append(trio.Event())
            nursery.start_soon(waiter, tenant, index)
            await trio.sleep(0.01)  # a fixed arrival order
        assert admission.statistics().waiting == len(arrivals)
        turn.set()
        for index in range(len(arrivals)):
            await trio.sleep(1)
            assert len(order) == index + 1, "one grant per released slot"
            gates[_position(order, arrivals)].set()
    assert admission.statistics().running == 0
    assert admission.statistics().waiting == 0
    return order


def _position(order: list[str], arrivals: list[str]) -> int:
    """Index in ``arrivals`` of the waiter granted last (the n-th grant of a tenant is its n-th arrival)."""
    tenant = order[-1]
    nth = order.count(tenant)
    seen = 0
    for index, name in enumerate(arrivals):
        if name == tenant:
            seen += 1
            if seen == nth:
                return index
    raise AssertionError("granted a waiter that never arrived")


async def test_fifo_serves_a_burst_before_the_tenant_that_came_after_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    arrivals = ["burst"] * 10 + ["steady"] * 2
    assert await _grant_order(_admission("fifo"), arrivals) == arrivals


async def test_fair_queue_interleaves_a_steady_tenant_with_a_burst(autojump_clock: trio.testing.MockClock) -> None:
    arrivals = ["burst"] * 10 + ["steady"] * 2
    order = await _grant_order(_admission("fair"), arrivals)
    # The steady tenant's first waiter goes right after the burst's first (both start at the same virtual time),
    # its second after the burst's second: not behind all ten.
    assert order == ["burst", "steady", "burst", "steady"] + ["burst"] * 8


async def test_fair_queue_round_robins_three_tenants(autojump_clock: trio.testing.MockClock) -> None:
    arrivals = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    order = await _grant_order(_admission("fair"), arrivals)
    assert order == ["a", "b", "c"] * 4


async def test_weights_give_a_tenant_a_larger_share(autojump_clock: trio.testing.MockClock) -> None:
    arrivals = ["heavy"] * 8 + ["light"] * 4
    order = await _grant_order(_admission("fair", weights={"heavy": 2}), arrivals)
    # While both wait, heavy (weight 2) gets two slots for each of light's (weight 1).
    assert order[:9] == ["heavy", "light", "heavy", "heavy", "light", "heavy", "heavy", "light", "heavy"]
    assert sorted(order) == sorted(arrivals)


async def test_a_waiter_that_gives_up_leaves_the_order_intact(autojump_clock: trio.testing.MockClock) -> None:
    admission = _admission("fair", queue_timeout=5.0)
    order: list[str] = []
    release = trio.Event()
    async with trio.open_nursery() as nursery:
        async def hold(tenant: str) -> None:
            async with admission.slot(tenant, "e"):
                order.append(tenant)
                await release.wait()

        nursery.start_soon(hold, "holder")
        await trio.sleep(0.1)
        with pytest.raises(Overloaded, match="queue timeout"):
            async with admission.slot("quitter", "e"):
                pass
        assert admission.statistics().waiting == 0
        # A cancelled waiter (client gone) leaves no trace either.
        with trio.move_on_after(1):
            async with admission.slot("cancelled", "e"):
                pass
        nursery.start_soon(hold, "next")
        await trio.sleep(0.1)
        release.set()
    assert order == ["holder", "next"]
    assert admission.statistics() == admission.statistics().__class__(0, 0, 0, 0, 0)


async def test_a_steady_tenant_is_not_starved_by_a_burst(autojump_clock: trio.testing.MockClock) -> None:
    """A tenant sending 10x the traffic: under the fair queue the steady tenant's longest queue wait is bounded
    by a couple of invocations (its two clients share its one slot of each round); under first come, first served
    it is the burst's whole queue (virtual time, so exact)."""

    async def longest_wait(discipline: str) -> float:
        admission = _admission(discipline, max_concurrency=2, max_queue=1000)
        waits: list[float] = []

        async def client(tenant: str, rounds: int, think: float) -> None:
            for _ in range(rounds):
                asked = trio.current_time()
                async with admission.slot(tenant, "e"):
                    if tenant == "steady":
                        waits.append(trio.current_time() - asked)
                    await trio.sleep(1.0)  # the invocation's run time
                await trio.sleep(think)

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(client, "burst", 10, 0.0)
            await trio.sleep(0.5)
            for _ in range(2):
                nursery.start_soon(client, "steady", 10, 0.5)
        return max(waits)

    fair = await longest_wait("fair")
    fifo = await longest_wait("fifo")
    assert fair <= 2.0, "a round or two of the two tenants"
    assert fifo >= 5.0, "behind the burst's queue"
    assert fifo >= 4 * fair


async def test_memory_budget_still_orders_within_the_fair_queue(autojump_clock: trio.testing.MockClock) -> None:
    gate = FairGate(4, 100)
    assert await gate.acquire("a", 80, give_up=trio.current_time() + 1)
    # "b" needs 50 MB: it waits; "c" needs 10 MB and fits: it is not held behind "b".
    results: dict[str, bool] = {}

    async def take(tenant: str, mb: int) -> None:
        results[tenant] = await gate.acquire(tenant, mb, give_up=trio.current_time() + 5)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(take, "b", 50)
        await trio.sleep(0.1)
        nursery.start_soon(take, "c", 10)
        await trio.sleep(0.1)
        assert results == {"c": True}
        gate.release(80)
        await trio.sleep(0.1)
    assert results == {"b": True, "c": True}
    assert gate.memory.used == 60
    assert gate.running == 2


def test_gate_refuses_bad_configuration() -> None:
    with pytest.raises(ValueError, match="discipline"):
        FairGate(1, 100, discipline="lifo")
    with pytest.raises(ValueError, match="weights"):
        FairGate(1, 100, weights={"t": 0})


def test_queue_settings_parse_and_name_the_variable() -> None:
    settings = Settings.from_env({"RUNNER_ADMISSION_QUEUE": "FIFO", "RUNNER_TENANT_WEIGHTS": "acme:3, beta:1"})
    assert settings.admission_queue == "fifo"
    assert dict(settings.tenant_weights) == {"acme": 3, "beta": 1}
    assert Settings.from_env({}).admission_queue == "fair"
    with pytest.raises(ConfigError, match="RUNNER_ADMISSION_QUEUE"):
        Settings.from_env({"RUNNER_ADMISSION_QUEUE": "random"})
    with pytest.raises(ConfigError, match="RUNNER_TENANT_WEIGHTS"):
        Settings.from_env({"RUNNER_TENANT_WEIGHTS": "acme:0"})


async def test_a_full_queue_gives_the_burst_s_newest_place_to_another_tenant(
    autojump_clock: trio.testing.MockClock,
) -> None:
    admission = _admission("fair", max_queue=4)
    outcomes: dict[str, str] = {}
    release = trio.Event()

    async def ask(name: str, tenant: str) -> None:
        try:
            async with admission.slot(tenant, "e"):
                outcomes[name] = "ran"
                await release.wait()
        except Overloaded as exc:
            outcomes[name] = str(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, "holder", "h")
        await trio.sleep(0.1)
        for i in range(4):
            nursery.start_soon(ask, f"b{i}", "b")
            await trio.sleep(0.1)
        assert admission.statistics().waiting == 4
        # The queue is full of b's: a gets in, b's newest waiter is refused in its place.
        nursery.start_soon(ask, "a", "a")
        await trio.sleep(0.1)
        assert outcomes["b3"].startswith("queue full (its place was given")
        assert "a" not in outcomes
        # b, still the longest, is refused at the door; so is a tenant once every tenant has one waiter less.
        await ask("b4", "b")
        assert outcomes["b4"] == "queue full"
        nursery.start_soon(ask, "c", "c")
        await trio.sleep(0.1)
        assert outcomes["b2"].startswith("queue full (its place")
        await ask("a2", "a")
        assert outcomes["a2"] == "queue full", "a has one waiter, b two: no place to take"
        assert admission.statistics().waiting == 4
        release.set()
    # In fair order: b0, a and c all started at virtual time 0, b1 at 1.
    assert [name for name, outcome in outcomes.items() if outcome == "ran"] == ["holder", "b0", "a", "c", "b1"]
    assert admission.statistics() == admission.statistics().__class__(0, 0, 0, 0, 0)


async def test_fifo_refuses_whoever_finds_the_queue_full(autojump_clock: trio.testing.MockClock) -> None:
    admission = _admission("fifo", max_queue=2)
    release = trio.Event()

    async def hold(tenant: str) -> None:
        async with admission.slot(tenant, "e"):
            await release.wait()

    async with trio.open_nursery() as nursery:
        for tenant in ("h", "b", "b"):
            nursery.start_soon(hold, tenant)
            await trio.sleep(0.1)
        with pytest.raises(Overloaded, match=r"^queue full$"):
            async with admission.slot("a", "e"):
                pass
        release.set()
