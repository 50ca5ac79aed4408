"""Benchmark ``bodies``: ``list<u8>`` round trips through the WAT ``echo`` guest, fast path vs stock conversion.

Reuses ``benchmarks._values.bare_call``: the same bare instantiate + call in one Store, once with
wasmtime-py's own element-by-element conversion (``stock_bytes_conversion()``) and once with the runner's
fast path, alternating call by call. Every round trip is checked to return the bytes it was given.
"""

from __future__ import annotations

import time
from typing import Any

from runner_trio.capabilities import world_linker
from runner_trio.engine import GuestRequest, WasmEngine, stock_bytes_conversion

from ._capi import timing_capi
from ._common import Row, Workspace, median, ms, pick, wat_guest
from ._values import bare_call

AIM = 10.0


def _round_trip(engine: WasmEngine, linker: Any, echo: Any, request: GuestRequest) -> float:
    t0 = time.perf_counter()
    response = bare_call(engine, linker, echo, request)
    elapsed = time.perf_counter() - t0
    if response.body != request.body:
        raise RuntimeError("the echo guest returned different bytes")
    return elapsed


async def run(ws: Workspace) -> None:
    quick = ws.quick
    engine = WasmEngine()
    linker = world_linker(engine)
    echo = engine.compile(wat_guest("echo"))
    for size, rounds in ((64 * 1024, pick(quick, 5, 15)), (1024 * 1024, pick(quick, 2, 5))):
        request = GuestRequest("POST", "/", body=bytes(range(256)) * (size // 256))
        with stock_bytes_conversion():
            _round_trip(engine, linker, echo, request)  # warm up both paths
        _round_trip(engine, linker, echo, request)
        stock: list[float] = []
        fast: list[float] = []
        for _ in range(rounds):
            with stock_bytes_conversion():
                stock.append(_round_trip(engine, linker, echo, request))
            fast.append(_round_trip(engine, linker, echo, request))
        speedup = median(stock) / median(fast)
        ws.report.add(Row(
            "bodies",
            f"{size // 1024} KiB list<u8> round trip (host -> echo guest -> host), median of {rounds}",
            f"fast path {ms(median(fast))}",
            f"stock wasmtime-py {ms(median(stock))}",
            f"{speedup:.1f}× faster",
            f"≥ {AIM:g}×",
            speedup >= AIM,
        ))
        if size < 1024 * 1024:
            continue
        # Where a fast-path round trip's time goes: inside wasmtime's C API (the call itself lowers and lifts
        # one value per byte; the value arrays are allocated and freed by C too) vs everything else (ours).
        with timing_capi() as spent:
            total = sum(_round_trip(engine, linker, echo, request) for _ in range(rounds))
        call = spent["wasmtime_component_func_call"]
        arrays = sum(seconds for name, seconds in spent.items() if "vallist" in name or "valtuple" in name)
        in_c = sum(spent.values())
        ws.report.add(Row(
            "bodies",
            f"{size // 1024} KiB round trip on the fast path: where the time goes (mean of {rounds})",
            f"wasmtime C API {ms(in_c / rounds)} ({in_c / total:.0%}: the call with its per-byte lowering and "
            f"lifting {ms(call / rounds)}, value arrays {ms(arrays / rounds)})",
            f"the runner's own conversion and the rest {ms((total - in_c) / rounds)}",
            f"{in_c / total:.0%} in wasmtime",
        ))
