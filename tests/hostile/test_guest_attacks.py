"""Hostile guests against a real runner: each attack ends with its structured outcome, within its deadline
(plus :data:`DEADLINE_SLACK_S` on a loaded machine; the exact figures are in ``scripts/bench hostile``).

Loops (pure, and around a host call), a memory bomb, unbounded recursion, a huge response, huge stdout and
stderr, a WASI sleep past the deadline, and an import no runner defines.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Callable

import pytest
import trio

from contract import ErrorCode, FailureKind
from runner_trio import Settings
from runner_trio.engine import DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MAX_OUTPUT_LINES
from tests._redis import RedisServer
from tests._timing import DEADLINE_SLACK_S
from tests.runner.debug_events._helpers import entries
from tests.runner.http.conftest import RunnerHandle, Shared

from .conftest import Ran, publish_hostile, run, start_runner

TIMEOUT_MS = 400
"""The deadline of the attacks that only a deadline stops (each would run forever, or for a minute)."""
LONG_TIMEOUT_MS = 20_000
"""The deadline of the attacks that end by themselves: far above what they take, so ending early proves it."""


def assert_timed_out(ran: Ran, timeout_ms: int = TIMEOUT_MS) -> None:
    assert ran.answer == {"status": 504, "headers": {}, "body_b64": None, "error": "execute_failed: timeout"}
    assert ran.seconds < timeout_ms / 1000 + DEADLINE_SLACK_S, ran.seconds


async def assert_still_serving(runner: RunnerHandle) -> None:
    """The runner answers a well-behaved guest after the attack."""
    echo = await runner.publish_wat("echo")
    ran = await run(runner, echo, body=b"still here", tenant="tenant-good", extension="ext-good")
    assert (ran.status, ran.body, ran.result["error"]) == (200, b"still here", None)


async def test_infinite_loop_times_out(runner: RunnerHandle) -> None:
    spin = await runner.publish_wat("spin")
    assert_timed_out(await run(runner, spin, timeout_ms=TIMEOUT_MS))
    await assert_still_serving(runner)


async def test_host_calls_in_a_tight_loop_time_out(runner: RunnerHandle) -> None:
    log_loop = await publish_hostile(runner, "log-loop")
    assert_timed_out(await run(runner, log_loop, timeout_ms=TIMEOUT_MS))
    await assert_still_serving(runner)


@pytest.mark.parametrize("mode", [0, 1], ids=["grow-until-refused", "one-huge-grow"])
async def test_memory_bomb_is_stopped_at_the_cap(runner: RunnerHandle, mode: int) -> None:
    bomb = await publish_hostile(runner, "bomb")
    ran = await run(runner, bomb, body=bytes([mode]), timeout_ms=LONG_TIMEOUT_MS, memory_mb=32)
    assert (ran.status, ran.code, ran.result["body_b64"]) == (500, ErrorCode.EXECUTE_FAILED, None)
    # The guest traps once its grow is refused; which kind that is reported as is item 5's (below).
    assert ran.kind in {FailureKind.MEMORY_LIMIT, FailureKind.TRAP}, ran.result
    assert ran.seconds < LONG_TIMEOUT_MS / 1000 / 4, "ended by the cap, not by the deadline"
    await assert_still_serving(runner)


@pytest.mark.xfail(strict=True, reason="classification: issue 14 item 5")
@pytest.mark.parametrize("mode", [0, 1], ids=["grow-until-refused", "one-huge-grow"])
async def test_memory_bomb_is_reported_as_memory_limit(runner: RunnerHandle, mode: int) -> None:
    # A guest that prints nothing and traps right after the store refused its memory.grow: the refusal (a
    # structured signal of the store's limits) makes it `memory_limit`, whatever the guest says or does not.
    bomb = await publish_hostile(runner, "bomb")
    ran = await run(runner, bomb, body=bytes([mode]), timeout_ms=LONG_TIMEOUT_MS, memory_mb=32)
    assert ran.kind is FailureKind.MEMORY_LIMIT, ran.result


async def test_one_huge_grow_is_refused_inside_the_guest(runner: RunnerHandle) -> None:
    bomb = await publish_hostile(runner, "bomb")
    ran = await run(runner, bomb, body=bytes([2]), timeout_ms=LONG_TIMEOUT_MS, memory_mb=32)
    assert (ran.status, ran.result["error"]) == (200, None)
    grown, pages = struct.unpack("<ii", ran.body)
    assert grown == -1, "memory.grow of 4 GiB under a 32 MiB cap returns -1"
    assert pages * 65536 <= 32 * 1024 * 1024


async def test_deep_recursion_traps(runner: RunnerHandle) -> None:
    recurse = await publish_hostile(runner, "recurse")
    ran = await run(runner, recurse, timeout_ms=LONG_TIMEOUT_MS)
    assert (ran.status, ran.result["error"]) == (500, "execute_failed: trap"), ran.result
    assert ran.seconds < LONG_TIMEOUT_MS / 1000 / 4
    await assert_still_serving(runner)


@pytest.mark.parametrize("mib", [3, 100])
async def test_a_response_over_the_cap_is_refused(runner: RunnerHandle, mib: int) -> None:
    big = await runner.publish_wat("big-output")
    assert runner.settings.max_response_body_bytes < mib * 1024 * 1024
    ran = await run(runner, big, body=struct.pack("<I", mib * 1024 * 1024), timeout_ms=LONG_TIMEOUT_MS,
                    memory_mb=128)
    assert (ran.status, ran.code, ran.result["body_b64"]) == (500, ErrorCode.EXECUTE_FAILED, None), ran.result
    # wasmtime refuses to copy that much out of the guest (its hostcall fuel) before the runner's own cap is
    # reached: reported as `trap` today, `response` once failures are classified from structured signals.
    assert ran.kind in {FailureKind.RESPONSE, FailureKind.TRAP}, ran.result
    assert ran.seconds < LONG_TIMEOUT_MS / 1000 / 4
    await assert_still_serving(runner)


@pytest.mark.xfail(strict=True, reason="classification: issue 14 item 5")
async def test_a_response_over_the_cap_is_reported_as_response(runner: RunnerHandle) -> None:
    big = await runner.publish_wat("big-output")
    ran = await run(runner, big, body=struct.pack("<I", 3 * 1024 * 1024), timeout_ms=LONG_TIMEOUT_MS)
    assert ran.answer == {"status": 500, "headers": {}, "body_b64": None, "error": "execute_failed: response"}


async def test_huge_stdout_and_stderr_end_with_the_answer_or_the_deadline(runner: RunnerHandle) -> None:
    flood = await publish_hostile(runner, "flood")
    # 16 MiB to each stream, then an answer: the answer arrives, the output is cut at the cap.
    ran = await run(runner, flood, body=struct.pack("<I", 4096), timeout_ms=LONG_TIMEOUT_MS)
    assert (ran.status, ran.result["error"]) == (200, None), ran.result
    assert ran.seconds < LONG_TIMEOUT_MS / 1000 / 2
    # Forever: the deadline ends it.
    assert_timed_out(await run(runner, flood, body=struct.pack("<I", 0), timeout_ms=TIMEOUT_MS))
    await assert_still_serving(runner)


async def test_huge_output_reaches_the_debug_stream_capped(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared, redis_server: RedisServer
) -> None:
    runner = await start_runner(nursery, runner_settings(debug_redis_url=redis_server.url), shared)
    flood = await publish_hostile(runner, "flood")
    tenant = f"tenant-flood-{secrets.token_hex(4)}"
    ran = await run(runner, flood, body=struct.pack("<I", 4096), timeout_ms=LONG_TIMEOUT_MS, tenant=tenant)
    assert (ran.status, ran.result["error"]) == (200, None), ran.result
    key = f"ext-debug:{tenant}:ext-hostile"
    messages: list[str] = []
    with trio.fail_after(10):
        while not any("truncated" in message for message in messages):
            await trio.sleep(0.05)
            messages = [fields["message"] for _, fields in await entries(redis_server.url, key)]
    # 32 MiB written; what reaches the stream is bounded by the output cap (and the per-invocation event budget),
    # and says it was cut.
    assert len(messages) <= DEFAULT_MAX_OUTPUT_LINES + 2
    assert sum(len(message) for message in messages) <= DEFAULT_MAX_OUTPUT_BYTES + 1024
    await runner.client.aclose()
    runner.shutdown.set()


@pytest.mark.parametrize("use_poll", [False, True], ids=["pollable.block", "poll"])
async def test_wasi_sleep_past_the_deadline_times_out(runner: RunnerHandle, use_poll: bool) -> None:
    sleep = await runner.publish_wat("sleep")
    body = struct.pack("<Q", 60 * 10**9) + bytes([use_poll])  # a minute
    assert_timed_out(await run(runner, sleep, body=body, timeout_ms=TIMEOUT_MS))
    await assert_still_serving(runner)


async def test_an_unknown_import_is_a_link_error_naming_it(runner: RunnerHandle) -> None:
    unknown = await publish_hostile(runner, "unknown-import")
    ran = await run(runner, unknown, timeout_ms=LONG_TIMEOUT_MS)
    assert (ran.status, ran.code, ran.kind) == (500, ErrorCode.EXECUTE_FAILED, FailureKind.LINK), ran.result
    assert "alga:extension/teleport" in ran.result["error"], ran.result
    assert "Traceback" not in ran.result["error"]
    await assert_still_serving(runner)
