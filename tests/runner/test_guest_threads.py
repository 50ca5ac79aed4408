"""Guest threads (``_guest_threads.GuestThreads``, ``RUNNER_GUEST_THREADS``, ``RUNNER_GUEST_STALL_MS``): by default
every admitted guest starts at once; with ``RUNNER_GUEST_THREADS=N`` short guests run N at a time per worker
process and a guest that runs long lets the next one start; never more than ``RUNNER_MAX_CONCURRENCY`` at once.
The clock here is trio's virtual one (``MockClock``, autojump): the tests check the order of events, not how long
anything takes on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from runner_trio import Runtime, Settings
from runner_trio._errors import ConfigError
from runner_trio._guest_threads import GuestThreads


@pytest.mark.parametrize(("env", "eager", "total"), [
    ({}, 8, 8),
    ({"RUNNER_GUEST_THREADS": "1", "RUNNER_MAX_CONCURRENCY": "3"}, 1, 3),
    ({"RUNNER_GUEST_THREADS": "0", "RUNNER_MAX_CONCURRENCY": "3"}, 3, 3),
    ({"RUNNER_GUEST_THREADS": "2", "RUNNER_MAX_CONCURRENCY": "16"}, 2, 16),
    ({"RUNNER_GUEST_THREADS": "20", "RUNNER_MAX_CONCURRENCY": "4"}, 4, 4),
])
async def test_the_runtime_sizes_its_guest_threads_from_the_settings(tmp_path: Path, env: dict[str, str],
                                                                     eager: int, total: int) -> None:
    runtime = await Runtime.open(Settings.from_env({**env, "RUNNER_VAR_DIR": str(tmp_path)}))
    try:
        assert runtime.guest_threads is not None
        assert (runtime.guest_threads.eager, runtime.guest_threads.total_tokens) == (eager, total)
        assert runtime.guest_threads.stall_s == 0.002
    finally:
        await runtime.aclose()


def test_a_negative_count_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="RUNNER_GUEST_THREADS"):
        Settings.from_env({"RUNNER_GUEST_THREADS": "-1"})


async def _guest(threads: GuestThreads, name: str, seconds: float, log: list[tuple[float, str]]) -> None:
    borrower = object()
    await threads.acquire_on_behalf_of(borrower)
    log.append((trio.current_time(), f"{name} starts"))
    try:
        await trio.sleep(seconds)
    finally:
        threads.release_on_behalf_of(borrower)
        log.append((trio.current_time(), f"{name} ends"))


def _run(main: object) -> None:
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))  # type: ignore[arg-type]


def test_short_guests_run_one_at_a_time_in_arrival_order() -> None:
    log: list[tuple[float, str]] = []

    async def main() -> None:
        threads = GuestThreads(8, eager=1, stall_s=1.0)
        async with trio.open_nursery() as nursery:
            for name in "abc":
                nursery.start_soon(_guest, threads, name, 0.5, log)
                await trio.testing.wait_all_tasks_blocked()
        assert threads.borrowed_tokens == 0
        assert threads.waiting == 0

    _run(main)
    assert [event for _, event in log] == ["a starts", "a ends", "b starts", "b ends", "c starts", "c ends"]


def test_a_guest_that_runs_long_lets_the_next_start_after_the_stall_time() -> None:
    log: list[tuple[float, str]] = []

    async def main() -> None:
        threads = GuestThreads(2, eager=1, stall_s=1.0)
        async with trio.open_nursery() as nursery:
            for name in ("slow", "next", "third"):
                nursery.start_soon(_guest, threads, name, 10.0 if name == "slow" else 3.0, log)
                await trio.testing.wait_all_tasks_blocked()

    _run(main)
    starts = {event: at for at, event in log}
    assert starts["slow starts"] == 0
    assert starts["next starts"] == 1.0  # once "slow" has run for the stall time, not when it ends
    assert starts["third starts"] == 4.0  # at most 2 at once: when "next" gives its thread back
    assert starts["slow ends"] == 10.0


def test_a_cancelled_waiter_leaves_the_line() -> None:
    async def main() -> None:
        threads = GuestThreads(1, eager=1, stall_s=0.0)
        holder = object()
        threads.acquire_on_behalf_of_nowait(holder)
        with trio.move_on_after(5):
            await threads.acquire_on_behalf_of(object())
        assert threads.waiting == 0
        threads.release_on_behalf_of(holder)
        threads.acquire_on_behalf_of_nowait(object())  # free again: taken at once
        assert threads.borrowed_tokens == 1

    _run(main)
