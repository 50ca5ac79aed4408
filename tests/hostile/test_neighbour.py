"""A well-behaved tenant beside the hostile guests: its p99 latency stays within a loose bound of its p99 alone.

The aim (issue 14) is 3x; a loaded 2-core CI machine makes any tight figure flaky, so the test asserts 10x with
a floor, and ``scripts/bench hostile`` records the exact ratio (docs/benchmarks.md).
"""

from __future__ import annotations

import statistics
import struct
from collections.abc import Awaitable, Callable

import trio

from tests.runner.http.conftest import RunnerHandle

from .conftest import publish_hostile, run

CALLS = 60
RATIO_BOUND = 10.0
FLOOR_S = 1.0
"""Below this a p99 beside the attacks is fine whatever the ratio (milliseconds alone make ratios noisy)."""


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


async def well_behaved_p99(runner: RunnerHandle, echo: str) -> float:
    samples: list[float] = []
    for index in range(CALLS):
        body = f"call {index}".encode()
        ran = await run(runner, echo, body=body, tenant="tenant-good", extension="ext-good")
        assert (ran.status, ran.body) == (200, body)
        samples.append(ran.seconds)
    return p99(samples)


async def hostile_load(runner: RunnerHandle, stop: trio.Event) -> list[Callable[[], Awaitable[None]]]:
    """One attacker per hostile guest, each its own tenant, calling until ``stop`` is set: loops, host-call loop,
    output flood, a sleep past the deadline, a memory bomb, unbounded recursion.

    Attackers finish their call in flight rather than being cancelled: a client cancelled mid-request leaves
    httpx's request-body generator to the garbage collector, which trio reports as an unraisable warning."""
    spin = await runner.publish_wat("spin")
    sleep = await runner.publish_wat("sleep")
    log_loop = await publish_hostile(runner, "log-loop")
    flood = await publish_hostile(runner, "flood")
    bomb = await publish_hostile(runner, "bomb")
    recurse = await publish_hostile(runner, "recurse")
    attacks: list[tuple[str, bytes | None, int]] = [
        (spin, None, 400),
        (log_loop, None, 400),
        (flood, struct.pack("<I", 0), 400),
        (sleep, struct.pack("<Q", 60 * 10**9), 400),
        (bomb, bytes([0]), 5000),
        (recurse, None, 5000),
    ]

    def attacker(index: int, digest: str, body: bytes | None, timeout_ms: int) -> Callable[[], Awaitable[None]]:
        async def attack() -> None:
            while not stop.is_set():
                ran = await run(runner, digest, body=body, timeout_ms=timeout_ms, memory_mb=32,
                                tenant=f"tenant-evil-{index}", extension=f"ext-evil-{index}")
                assert ran.result["error"] is not None, ran.result

        return attack

    return [attacker(index, *attack) for index, attack in enumerate(attacks)]


async def test_a_neighbour_keeps_its_latency_beside_hostile_guests(runner: RunnerHandle) -> None:
    echo = await runner.publish_wat("echo")
    stop = trio.Event()
    attackers = await hostile_load(runner, stop)
    await well_behaved_p99(runner, echo)  # warm: compiled, cached, connections open
    alone = await well_behaved_p99(runner, echo)
    async with trio.open_nursery() as nursery:
        for attack in attackers:
            nursery.start_soon(attack)
        await trio.sleep(0.5)
        beside = await well_behaved_p99(runner, echo)
        stop.set()
    print(f"well-behaved p99 alone {alone * 1000:.1f} ms, beside hostile guests {beside * 1000:.1f} ms")
    assert beside <= max(RATIO_BOUND * alone, FLOOR_S), (alone, beside)
