"""WASI for guests: stdout/stderr become bounded events; sleeping cannot outlive the invocation."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
import trio
from wasmtime.component import Component, Linker

from runner_trio.engine import GuestError, GuestRequest, Invocation, WasmEngine, invoke
from tests._timing import DEADLINE_SLACK_S

from .conftest import Events


async def test_stdout_and_stderr_lines_reach_the_event_sink(
    ticking: WasmEngine,
    linker: Linker,
    guests: dict[str, Component],
    make_invocation: Callable[..., Invocation],
    events: Events,
) -> None:
    invocation = make_invocation()
    request = GuestRequest("GET", "/", body=struct.pack("<I", 2))
    response = await invoke(ticking, linker, guests["print"], request, invocation, timeout=5)
    assert response.status == 200
    # "hel" + "lo\n" arrive as two writes and leave as one line; the unterminated last line is flushed.
    assert events.on("stdout") == ["out line", "out line", "hello"]
    assert events.on("stderr") == ["err line", "no newline at end"]
    levels = {stream: level for level, stream, _ in events.items}
    assert levels == {"stdout": "info", "stderr": "warn"}
    assert invocation.counters["stdout_bytes"] == 2 * 9 + 6
    assert invocation.counters["stderr_bytes"] == 9 + 17


async def test_a_guest_printing_many_lines_stays_bounded(
    ticking: WasmEngine,
    linker: Linker,
    guests: dict[str, Component],
    make_invocation: Callable[..., Invocation],
    events: Events,
) -> None:
    invocation = make_invocation()
    lines = 100_000
    request = GuestRequest("GET", "/", body=struct.pack("<I", lines))
    response = await invoke(ticking, linker, guests["print"], request, invocation, timeout=20, max_output_lines=100)
    assert response.status == 200
    assert len(events.items) == 101
    assert events.items[-1][2].startswith("[runner] guest output truncated")
    assert invocation.counters["stdout_bytes"] == lines * 9 + 6
    assert invocation.counters["output_bytes_dropped"] > lines * 9 - 100 * 9 - 100


async def test_long_lines_are_cut_into_several_events(
    ticking: WasmEngine,
    linker: Linker,
    guests: dict[str, Component],
    make_invocation: Callable[..., Invocation],
    events: Events,
) -> None:
    request = GuestRequest("GET", "/", body=struct.pack("<I", 1))
    await invoke(ticking, linker, guests["print"], request, make_invocation(), timeout=5, max_line_bytes=5)
    assert events.on("stdout") == ["out l", "ine", "hello"]


@pytest.mark.parametrize("mode", [b"", b"\x01"], ids=["block", "poll"])
async def test_short_sleeps_complete(
    mode: bytes,
    ticking: WasmEngine,
    linker: Linker,
    guests: dict[str, Component],
    make_invocation: Callable[..., Invocation],
) -> None:
    request = GuestRequest("GET", "/", body=struct.pack("<Q", 50_000_000) + mode)
    start = trio.current_time()
    response = await invoke(ticking, linker, guests["sleep"], request, make_invocation(), timeout=5)
    assert response.status == 200
    assert 0.05 <= trio.current_time() - start < 0.05 + DEADLINE_SLACK_S


@pytest.mark.parametrize("mode", [b"", b"\x01"], ids=["block", "poll"])
async def test_a_sleep_past_the_deadline_ends_at_the_deadline(
    mode: bytes,
    ticking: WasmEngine,
    linker: Linker,
    guests: dict[str, Component],
    make_invocation: Callable[..., Invocation],
) -> None:
    request = GuestRequest("GET", "/", body=struct.pack("<Q", 10 * 10**9) + mode)
    start = trio.current_time()
    with pytest.raises(GuestError) as info:
        await invoke(ticking, linker, guests["sleep"], request, make_invocation(), timeout=0.2)
    assert info.value.kind == "timeout"
    assert trio.current_time() - start < 0.2 + DEADLINE_SLACK_S  # not the 10 s asked for
