"""A warm invocation reads no type information from the C API: it is read once per compiled component."""

from __future__ import annotations

import ctypes
import gc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import trio
from wasmtime import _bindings
from wasmtime.component import Component, Linker

from runner_trio.engine import GuestRequest, Invocation, WasmEngine, invoke

_FUNC_PTR: Any = ctypes.CFUNCTYPE(None).__base__  # _CFuncPtr, the base of every ctypes function pointer

MAX_CALLS_PER_ECHO = 80
"""Calls into wasmtime's C API for one WAT echo invocation (~145 when every call re-read the types)."""


@contextmanager
def counted_c_calls() -> Iterator[Counter[str]]:
    originals = {
        name: value
        for name, value in vars(_bindings).items()
        if name.startswith("_") and isinstance(value, _FUNC_PTR)
    }
    counts: Counter[str] = Counter()

    def counting(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            counts[name] += 1
            return fn(*args)

        return call

    for name, fn in originals.items():
        setattr(_bindings, name, counting(name[1:], fn))
    try:
        yield counts
    finally:
        for name, fn in originals.items():
            setattr(_bindings, name, fn)


REQUEST = GuestRequest("POST", "/echo", [("content-type", "text/plain"), ("x-a", "1")], b"hello")


async def test_a_warm_invocation_reads_no_type_information(
    ticking: WasmEngine, linker: Linker, guests: dict[str, Component], make_invocation: Callable[..., Invocation]
) -> None:
    component = guests["echo"]
    await invoke(ticking, linker, component, REQUEST, make_invocation(), timeout=10)
    # Type objects of earlier tests freed by the collector mid-call would show as `*_type_delete` calls: collect
    # them first and keep the collector out of the counted call.
    gc.collect()
    gc.disable()
    try:
        with counted_c_calls() as counts:
            response = await invoke(ticking, linker, component, REQUEST, make_invocation(), timeout=10)
    finally:
        gc.enable()
    assert response.status == 200
    assert response.body == b"hello"
    # Reads only: freeing a type object someone else dropped is not reading type information.
    type_reads = {name: n for name, n in counts.items() if "_type" in name and not name.endswith("_delete")}
    assert type_reads == {}
    assert counts["wasmtime_component_instance_get_export_index"] == 0
    calls = sum(n for name, n in counts.items() if name != "wasmtime_engine_increment_epoch")  # the ticker's
    assert calls <= MAX_CALLS_PER_ECHO, counts


async def test_components_keep_their_own_types_across_threads(
    ticking: WasmEngine, linker: Linker, guests: dict[str, Component], make_invocation: Callable[..., Invocation]
) -> None:
    """Several components, many concurrent calls: each answer is its own guest's (no type cache mix-up)."""
    answers: dict[str, list[Any]] = {"echo": [], "print": []}

    async def call(name: str, index: int) -> None:
        body = f"{name}-{index}".encode() if name == "echo" else None  # print reads a count from its body
        request = GuestRequest("POST", f"/{name}/{index}", [("x-i", str(index))], body)
        answers[name].append((index, await invoke(ticking, linker, guests[name], request, make_invocation(),
                                                  timeout=10)))

    async with trio.open_nursery() as nursery:
        for index in range(20):
            for name in answers:
                nursery.start_soon(call, name, index)
    for index, response in answers["echo"]:
        assert response.body == f"echo-{index}".encode()
        assert ("x-url", f"/echo/{index}") in response.headers
    assert len(answers["print"]) == 20
    assert all(response.status == 200 for _, response in answers["print"])
