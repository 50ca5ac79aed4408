"""Failure classification comes from what the host observed, never from text the guest wrote."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from wasmtime.component import Component, Linker

from runner_trio.engine import GuestError, GuestRequest, Invocation, WasmEngine, invoke
from tests.runner.engine.conftest import Events

GET = GuestRequest("GET", "/")
SPOOFS = ("out of memory", "memory allocation of", "MemoryError", "memory_limit", "wasm trap: interrupt",
          "all fuel consumed", "exceeds memory limits")


async def _assert_plain_trap(
    engine: WasmEngine, linker: Linker, spoof: Component, invocation: Invocation, events: Events
) -> None:
    with pytest.raises(GuestError) as info:
        await invoke(engine, linker, spoof, GET, invocation, timeout=5, memory_bytes=8 << 20)
    assert info.value.kind == "trap"
    assert info.value.code == "trap"
    # The guest did say all of it, on every channel, and wasmtime's backtrace names its function after it.
    said = "\n".join(events.on("stderr") + events.on("stdout") + events.on("log"))
    for phrase in SPOOFS:
        assert phrase in said
        assert phrase in info.value.stderr_tail
    assert "Caused by:\n    0: all fuel consumed" in info.value.detail
    assert "unreachable" in info.value.message


async def test_a_guest_printing_every_spoof_phrase_then_trapping_is_a_plain_trap(
    ticking: WasmEngine,
    linker: Linker,
    guests: dict[str, Component],
    make_invocation: Callable[..., Invocation],
    events: Events,
) -> None:
    await _assert_plain_trap(ticking, linker, guests["spoof"], make_invocation(), events)


async def test_the_spoofing_guest_is_a_plain_trap_with_observed_memories_too(
    observing: WasmEngine,
    observing_linker: Linker,
    observing_guests: dict[str, Component],
    make_invocation: Callable[..., Invocation],
    events: Events,
) -> None:
    await _assert_plain_trap(observing, observing_linker, observing_guests["spoof"], make_invocation(), events)


async def test_a_real_memory_cap_is_observed_and_a_real_deadline_is_still_a_timeout(
    observing: WasmEngine,
    observing_linker: Linker,
    observing_guests: dict[str, Component],
    ticking: WasmEngine,
    linker: Linker,
    guests: dict[str, Component],
    make_invocation: Callable[..., Invocation],
) -> None:
    with pytest.raises(GuestError) as info:
        await invoke(
            observing, observing_linker, observing_guests["grow"], GET, make_invocation(), timeout=5,
            memory_bytes=8 << 20,
        )
    assert info.value.kind == "memory_limit"
    assert "exceeds memory limits" not in info.value.message  # the guest's own words play no part
    with pytest.raises(GuestError) as info:
        await invoke(
            observing, observing_linker, observing_guests["echo"], GET, make_invocation(), timeout=5,
            memory_bytes=32 * 1024,  # below the guest's initial memory: refused by the runner's creator
        )
    assert info.value.kind == "memory_limit"
    with pytest.raises(GuestError) as info:
        await invoke(ticking, linker, guests["spin"], GET, make_invocation(), timeout=0.1)
    assert info.value.kind == "timeout"


async def test_with_wasmtime_memories_a_cap_hit_inside_a_call_is_only_a_trap(
    ticking: WasmEngine, linker: Linker, guests: dict[str, Component], make_invocation: Callable[..., Invocation]
) -> None:
    # No host signal (wasmtime's own memories refuse a growth silently), so no guess from the guest's text.
    with pytest.raises(GuestError) as info:
        await invoke(ticking, linker, guests["grow"], GET, make_invocation(), timeout=5, memory_bytes=8 << 20)
    assert info.value.kind == "trap"
    assert "memory allocation of" in info.value.stderr_tail  # what the guest claimed, reported, not believed
