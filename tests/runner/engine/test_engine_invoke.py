"""invoke(): deadlines, outer cancellation, memory caps, traps, link failures."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
import trio
import trio.testing
import wasmtime
from wasmtime.component import Component, Linker

from runner_trio.engine import GuestError, GuestRequest, Invocation, WasmEngine, invoke
from tests._timing import DEADLINE_SLACK_S

GET = GuestRequest("GET", "/")


async def test_spinning_guest_times_out_while_another_call_completes(
    ticking: WasmEngine, linker: Linker, guests: dict[str, Component], make_invocation: Callable[..., Invocation]
) -> None:
    outcome: dict[str, object] = {}

    async def spin() -> None:
        start = trio.current_time()
        with pytest.raises(GuestError) as info:
            await invoke(ticking, linker, guests["spin"], GET, make_invocation(), timeout=0.2)
        outcome["spin"] = (info.value.kind, trio.current_time() - start)

    async def echo() -> None:
        await trio.sleep(0.05)
        response = await invoke(ticking, linker, guests["echo"], GET, make_invocation(), timeout=5)
        outcome["echo"] = (response.status, trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(spin)
        nursery.start_soon(echo)
    kind, elapsed = outcome["spin"]  # type: ignore[misc]
    assert kind == "timeout"
    assert 0.2 <= elapsed < 0.2 + DEADLINE_SLACK_S  # the spin guest never ends by itself
    assert outcome["echo"][0] == 200  # type: ignore[index]


@pytest.mark.parametrize("guest", ["spin", "sleep"])
async def test_outer_cancellation_stops_the_guest_and_frees_its_thread(
    guest: str,
    ticking: WasmEngine,
    linker: Linker,
    guests: dict[str, Component],
    make_invocation: Callable[..., Invocation],
) -> None:
    limiter = trio.to_thread.current_default_thread_limiter()
    request = GuestRequest("GET", "/", body=struct.pack("<Q", 30 * 10**9))  # sleep: 30 s
    start = trio.current_time()
    with trio.move_on_after(0.1) as scope:
        await invoke(ticking, linker, guests[guest], request, make_invocation(), timeout=30)
    elapsed = trio.current_time() - start
    assert scope.cancelled_caught  # a Cancelled, not a GuestError
    assert elapsed < 0.1 + DEADLINE_SLACK_S  # not the 30 s the guest asked for (or forever)
    assert limiter.statistics().borrowed_tokens == 0


async def test_memory_growth_past_the_cap_is_a_memory_limit_and_the_component_stays_usable(
    observing: WasmEngine,
    observing_linker: Linker,
    observing_guests: dict[str, Component],
    make_invocation: Callable[..., Invocation],
) -> None:
    cap = 8 * 1024 * 1024
    grow = observing_guests["grow"]
    with pytest.raises(GuestError) as info:
        await invoke(observing, observing_linker, grow, GET, make_invocation(), timeout=5, memory_bytes=cap)
    assert info.value.kind == "memory_limit"
    assert "memory allocation of" in info.value.stderr_tail
    within = GuestRequest("GET", "/", body=struct.pack("<I", 2))  # grow 2 MiB, then answer
    response = await invoke(
        observing, observing_linker, grow, within, make_invocation(), timeout=5, memory_bytes=cap
    )
    assert response.status == 200
    assert response.body == struct.pack("<I", 1 + 2 * 16)


async def test_store_limits_fail_instantiation(
    ticking: WasmEngine, linker: Linker, guests: dict[str, Component], make_invocation: Callable[..., Invocation]
) -> None:
    with pytest.raises(GuestError) as info:
        await invoke(ticking, linker, guests["echo"], GET, make_invocation(), timeout=5, memory_bytes=32 * 1024)
    assert info.value.kind == "memory_limit"
    assert "exceeds memory limits" in str(info.value)
    with pytest.raises(GuestError) as info:
        await invoke(ticking, linker, guests["echo"], GET, make_invocation(), timeout=5, max_instances=1)
    assert info.value.kind == "memory_limit"
    assert "instance count" in str(info.value)


async def test_trap_is_reported_and_the_next_invocation_works(
    ticking: WasmEngine, linker: Linker, guests: dict[str, Component], make_invocation: Callable[..., Invocation]
) -> None:
    with pytest.raises(GuestError) as info:
        await invoke(ticking, linker, guests["trap"], GET, make_invocation(), timeout=5)
    assert info.value.kind == "trap"
    assert "unreachable" in str(info.value)
    assert "wasm backtrace" in info.value.detail
    response = await invoke(
        ticking, linker, guests["trap"], GuestRequest("GET", "/", body=b"x"), make_invocation(), timeout=5
    )
    assert response.status == 204


@pytest.mark.parametrize(
    ("wat", "message"),
    [
        ('(component (import "alga:extension/unknown" (instance (export "f" (func)))))', "unknown"),
        ("(component)", "does not export `handler`"),
        (
            """(component
                 (core module $m (func (export "f") (result i32) i32.const 1))
                 (core instance $i (instantiate $m))
                 (func (export "handler") (result u32) (canon lift (core func $i "f"))))""",
            "unexpected type",
        ),
    ],
)
async def test_components_that_do_not_fit_the_world_are_link_errors(
    wat: str,
    message: str,
    ticking: WasmEngine,
    linker: Linker,
    make_invocation: Callable[..., Invocation],
) -> None:
    component = ticking.compile(bytes(wasmtime.wat2wasm(wat)))
    with pytest.raises(GuestError) as info:
        await invoke(ticking, linker, component, GET, make_invocation(), timeout=5)
    assert info.value.kind == "link"
    assert message in str(info.value)


@pytest.mark.parametrize("limits", [{"timeout": 0}, {"timeout": float("inf")}, {"timeout": 1, "memory_bytes": 0}])
async def test_invalid_limits_are_refused(
    limits: dict[str, float],
    ticking: WasmEngine,
    linker: Linker,
    guests: dict[str, Component],
    make_invocation: Callable[..., Invocation],
) -> None:
    with pytest.raises(ValueError, match="positive"):
        await invoke(ticking, linker, guests["echo"], GET, make_invocation(), **limits)  # type: ignore[arg-type]


async def test_guests_run_on_the_limiter_given_not_trios_default(
    ticking: WasmEngine, linker: Linker, guests: dict[str, Component], make_invocation: Callable[..., Invocation]
) -> None:
    guest_threads = trio.CapacityLimiter(2)
    default = trio.to_thread.current_default_thread_limiter()
    before = default.statistics().borrowed_tokens
    seen: dict[str, int] = {}

    async def spin() -> None:
        with pytest.raises(GuestError):
            await invoke(ticking, linker, guests["spin"], GET, make_invocation(), timeout=0.3,
                         limiter=guest_threads)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(spin)
        nursery.start_soon(spin)
        await trio.testing.wait_all_tasks_blocked()
        seen = {"guest": guest_threads.statistics().borrowed_tokens, "default": default.statistics().borrowed_tokens}
    assert seen == {"guest": 2, "default": before}
    assert guest_threads.statistics().borrowed_tokens == 0


async def test_a_guest_running_when_the_ticker_is_cancelled_still_stops(
    engine: WasmEngine, linker: Linker, guests: dict[str, Component], make_invocation: Callable[..., Invocation],
) -> None:
    """Shutdown cancels the ticker and the guest's task together; without ticks a guest never sees the
    cancellation (it stops only at an epoch tick), so the cancelled ticker keeps ticking while guests run."""
    outcome: dict[str, object] = {}

    async def spin() -> None:
        try:
            await invoke(engine, linker, guests["spin"], GET, make_invocation(), timeout=30)
        except trio.Cancelled:
            outcome["spin"] = "cancelled"
            raise

    with trio.fail_after(DEADLINE_SLACK_S + 10):
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run_ticker)
            nursery.start_soon(spin)
            while engine.calls_in_flight == 0:  # noqa: ASYNC110 - the guest's worker thread counts itself
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()  # the ticker and the guest's task at once, as at shutdown
    assert outcome == {"spin": "cancelled"}
    assert engine.calls_in_flight == 0
    assert not engine.ticking
