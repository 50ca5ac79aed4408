"""Admission: global, per-tenant and per-extension caps with a bounded queue, in virtual time."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from runner_trio._admission import Admission
from runner_trio._errors import Overloaded


async def _hold(admission: Admission, tenant: str, ext: str, release: trio.Event, log: list[str]) -> None:
    async with admission.slot(tenant, ext):
        log.append(f"in {tenant}/{ext}")
        await release.wait()


async def test_per_tenant_cap_queues_then_times_out(autojump_clock: trio.testing.MockClock) -> None:
    admission = Admission(max_concurrency=10, max_per_tenant=2, max_per_extension=10, queue_timeout=1.0)
    release = trio.Event()
    log: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_hold, admission, "t1", "e1", release, log)
        nursery.start_soon(_hold, admission, "t1", "e2", release, log)
        await trio.sleep(0.1)
        start = trio.current_time()
        with pytest.raises(Overloaded):
            async with admission.slot("t1", "e3"):
                pass
        assert trio.current_time() - start == pytest.approx(1.0)
        # Another tenant is not affected by t1's cap.
        async with admission.slot("t2", "e1"):
            log.append("in t2/e1")
        release.set()
    assert log.count("in t2/e1") == 1
    assert admission.statistics().running == 0
    assert admission.statistics().tenants == 0, "idle limiters are dropped"


async def test_waiter_gets_slot_when_one_frees(autojump_clock: trio.testing.MockClock) -> None:
    admission = Admission(max_concurrency=1, max_per_tenant=5, max_per_extension=5, queue_timeout=10.0)
    release = trio.Event()
    log: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_hold, admission, "a", "x", release, log)
        await trio.sleep(0.1)
        nursery.start_soon(_hold, admission, "b", "y", trio.Event(), log)
        await trio.sleep(1)
        assert log == ["in a/x"], "global cap of 1 holds the second back"
        release.set()
        await trio.sleep(0.1)
        assert log == ["in a/x", "in b/y"]
        nursery.cancel_scope.cancel()


async def test_full_queue_refuses_at_once(autojump_clock: trio.testing.MockClock) -> None:
    admission = Admission(max_concurrency=1, max_per_tenant=5, max_per_extension=5, max_queue=1, queue_timeout=10.0)
    release = trio.Event()
    log: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_hold, admission, "a", "x", release, log)
        await trio.sleep(0.1)
        nursery.start_soon(_hold, admission, "a", "x", release, log)  # waits in the queue
        await trio.sleep(0.1)
        start = trio.current_time()
        with pytest.raises(Overloaded, match="queue full"):
            async with admission.slot("a", "x"):
                pass
        assert trio.current_time() == start, "refused without waiting"
        release.set()
    assert log == ["in a/x", "in a/x"]


async def test_the_callers_deadline_cuts_the_queue_wait(autojump_clock: trio.testing.MockClock) -> None:
    admission = Admission(max_concurrency=1, max_per_tenant=5, max_per_extension=5, queue_timeout=10.0)
    release = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_hold, admission, "a", "x", release, [])
        await trio.sleep(0.1)
        start = trio.current_time()
        with pytest.raises(Overloaded, match="before the request's deadline"):
            async with admission.slot("b", "y", deadline=start + 0.5):
                pass
        assert trio.current_time() - start == pytest.approx(0.5)
        with pytest.raises(Overloaded, match="within the queue timeout"):
            async with admission.slot("b", "y", deadline=start + 60):
                pass
        assert trio.current_time() - start == pytest.approx(0.5 + 10.0)
        release.set()
    assert admission.statistics().waiting == 0


async def _hold_memory(admission: Admission, tenant: str, mb: int, release: trio.Event, log: list[str]) -> None:
    async with admission.slot(tenant, "e", memory_mb=mb):
        log.append(f"in {tenant}")
        await release.wait()
    log.append(f"out {tenant}")


async def test_memory_budget_queues_an_invocation_that_would_exceed_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    admission = Admission(max_concurrency=10, max_per_tenant=10, max_per_extension=10, queue_timeout=5.0,
                          memory_budget_mb=256)
    first, second = trio.Event(), trio.Event()
    log: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_hold_memory, admission, "t1", 128, first, log)
        nursery.start_soon(_hold_memory, admission, "t2", 128, second, log)
        await trio.sleep(0.1)
        assert admission.statistics().memory_mb == 256
        nursery.start_soon(_hold_memory, admission, "t3", 64, second, log)  # does not fit: waits
        await trio.sleep(1.0)
        assert "in t3" not in log
        assert admission.statistics().waiting == 1
        first.set()  # t1's 128 MB come back: t3 runs
        await trio.sleep(0.1)
        assert "in t3" in log
        assert admission.statistics().memory_mb == 128 + 64
        start = trio.current_time()
        with pytest.raises(Overloaded, match="memory budget"):
            async with admission.slot("t4", "e", memory_mb=128):  # 192 + 128 > 256 until the queue timeout
                pass
        assert trio.current_time() - start == pytest.approx(5.0)
        second.set()
    assert admission.statistics().memory_mb == 0
