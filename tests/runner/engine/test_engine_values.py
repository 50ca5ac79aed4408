"""Bodies cross the handler boundary byte-exact, on the fast list<u8> path and on wasmtime-py's own."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

import pytest
from wasmtime.component import Component, Linker

from runner_trio.engine import (
    GuestRequest,
    Invocation,
    WasmEngine,
    fast_bytes_installed,
    invoke,
    stock_bytes_conversion,
)


@pytest.mark.parametrize("size", [0, 1, 64 * 1024, 1024 * 1024])
async def test_echo_round_trip_is_byte_exact(
    size: int,
    ticking: WasmEngine,
    linker: Linker,
    guests: dict[str, Component],
    make_invocation: Callable[..., Invocation],
) -> None:
    body = random.Random(size).randbytes(size)
    request = GuestRequest("POST", "/echo?x=1", [("content-type", "application/octet-stream")], body)
    response = await invoke(ticking, linker, guests["echo"], request, make_invocation(), timeout=10)
    assert response.status == 200
    assert response.body == body
    assert response.headers == [
        ("x-method", "POST"),
        ("x-url", "/echo?x=1"),
        ("x-tenant", "tenant-1"),
        ("x-request-id", "req-1"),
        ("content-type", "application/octet-stream"),
    ]


async def test_absent_and_empty_bodies_stay_distinct(
    ticking: WasmEngine, linker: Linker, guests: dict[str, Component], make_invocation: Callable[..., Invocation]
) -> None:
    absent = await invoke(ticking, linker, guests["echo"], GuestRequest("GET", "/"), make_invocation(), timeout=5)
    empty = await invoke(
        ticking, linker, guests["echo"], GuestRequest("GET", "/", body=b""), make_invocation(), timeout=5
    )
    assert absent.body is None
    assert empty.body == b""


async def test_fast_and_stock_conversions_agree(
    ticking: WasmEngine, linker: Linker, guests: dict[str, Component], make_invocation: Callable[..., Invocation]
) -> None:
    body = random.Random(7).randbytes(64 * 1024)
    request = GuestRequest("PUT", "/", body=body)
    assert fast_bytes_installed()
    fast = await invoke(ticking, linker, guests["echo"], request, make_invocation(), timeout=10)
    with stock_bytes_conversion():
        assert not fast_bytes_installed()
        stock = await invoke(ticking, linker, guests["echo"], request, make_invocation(), timeout=10)
    assert fast_bytes_installed()
    assert fast.body == stock.body == body


async def test_guest_built_body_reaches_the_host_intact(
    ticking: WasmEngine, linker: Linker, guests: dict[str, Component], make_invocation: Callable[..., Invocation]
) -> None:
    size = 1024 * 1024 + 3
    request = GuestRequest("GET", "/", body=struct.pack("<I", size))
    response = await invoke(ticking, linker, guests["big-output"], request, make_invocation(), timeout=10)
    assert response.body == bytes(i % 251 for i in range(size))
