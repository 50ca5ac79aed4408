"""Measure the engine's value conversion and invocation overhead (a developer script; ``bodies`` reuses
:func:`bare_call`).

Run from the repository root (it uses the WAT test guests of ``tests/guests/wat``)::

    .venv/bin/python -m benchmarks._values [--rounds N]

Prints, side by side in one run:

* ``list<u8>`` round trips (host -> guest -> host through the ``echo`` guest, a bare call in one Store) with
  wasmtime-py's own conversion and with the fast path, at 64 KiB and 1 MiB;
* the cost of ``invoke()`` against a bare instantiate + call of the same component (and against that bare call
  moved to a worker thread, which is what ``invoke`` has to do).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import trio
import wasmtime
from wasmtime.component import Component, Linker

from runner_trio.capabilities import world_linker
from runner_trio.engine import (
    GuestRequest,
    Invocation,
    InvocationContext,
    WasmEngine,
    build_execute_request,
    invoke,
    parse_execute_response,
    stock_bytes_conversion,
)

_CONTEXT = InvocationContext(tenant_id="bench", extension_id="bench")


def _median_ms(fn: Callable[[], object], rounds: int) -> float:
    fn()  # warm up
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def bare_call(engine: WasmEngine, linker: Linker, component: Component, request: GuestRequest) -> Any:
    """Instantiate ``component`` and call ``handler`` once in a fresh Store on this thread (no ``invoke``)."""
    store = wasmtime.Store(engine.wasmtime)
    try:
        store.set_wasi(wasmtime.WasiConfig())
        store.set_epoch_deadline(1 << 40)
        instance = linker.instantiate(store, component)
        handler = instance.get_func(store, "handler")
        assert handler is not None
        result = parse_execute_response(handler(store, build_execute_request(request, _CONTEXT)))
        handler.post_return(store)
        return result
    finally:
        store.close()


def bench_bytes(engine: WasmEngine, linker: Linker, echo: Component, rounds: int) -> None:
    print("list<u8> round trip through the echo guest (median ms; stock / fast / speed-up)")
    for size in (64 * 1024, 1024 * 1024):
        request = GuestRequest("POST", "/", body=bytes(range(256)) * (size // 256))

        def call(request: GuestRequest = request) -> None:
            bare_call(engine, linker, echo, request)

        with stock_bytes_conversion():
            stock = _median_ms(call, max(1, rounds // 4) if size > 64 * 1024 else rounds)
        fast = _median_ms(call, rounds)
        print(f"  {size // 1024:>5} KiB: {stock:9.1f} / {fast:7.1f} / {stock / fast:5.1f}x")


def bench_invoke(engine: WasmEngine, linker: Linker, echo: Component, rounds: int) -> None:
    request = GuestRequest("GET", "/bench", [("accept", "*/*")], b"hello")
    bare = _median_ms(lambda: bare_call(engine, linker, echo, request), rounds * 10)
    results: dict[str, float] = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run_ticker)
            invocation = Invocation(_CONTEXT)

            async def timed(label: str, fn: Callable[[], Any]) -> None:
                await fn()
                samples = []
                for _ in range(rounds * 10):
                    start = time.perf_counter()
                    await fn()
                    samples.append(time.perf_counter() - start)
                results[label] = statistics.median(samples) * 1e3

            await timed("invoke", lambda: invoke(engine, linker, echo, request, invocation, timeout=5))
            await timed("thread", lambda: trio.to_thread.run_sync(bare_call, engine, linker, echo, request))
            nursery.cancel_scope.cancel()

    trio.run(main)
    print("invocation overhead, echo guest (median ms)")
    print(f"  bare instantiate + call:        {bare:6.3f}")
    print(f"  same, in trio.to_thread:        {results['thread']:6.3f}")
    print(f"  invoke():                       {results['invoke']:6.3f}  ({results['invoke'] / bare:.2f}x bare)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    load_wat = importlib.import_module("tests.guests.wat").load_wat
    engine = WasmEngine()
    linker = world_linker(engine)
    echo = engine.compile(load_wat("echo"))
    bench_bytes(engine, linker, echo, args.rounds)
    bench_invoke(engine, linker, echo, args.rounds)


if __name__ == "__main__":
    main()
