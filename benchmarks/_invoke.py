"""Benchmark ``invoke``: the runner's in-process invocation path against a bare wasmtime-py instantiate + call.

Sides, interleaved call by call over the same compiled component and the same Linker:

* ``execute()``: ``runner_trio.execute`` on a real ``Runtime`` (admission, cache entry pin, compiled
  component lookup, ``Invocation``, ``invoke()``, result shaping) — everything ``/v1/execute`` does but HTTP;
* ``invoke()``: ``runner_trio.engine.invoke`` with a real ``Invocation`` (fresh Store with limits, WASI with
  output capture, epoch-deadline callback, worker thread under a trio cancel scope);
* bare: ``wasmtime.Store`` + ``WasiConfig`` + ``linker.instantiate`` + ``handler(...)`` + ``post_return`` on
  the calling thread. The runner's Linker is reused because a toolchain guest imports every interface of the
  world (a bare Linker would need them all); its host functions look the invocation up per thread, so the bare
  call binds one, which costs a thread-local assignment.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import wasmtime

from runner_trio import Runtime, Settings, execute, parse_execute_request
from runner_trio.engine import (
    CallState,
    GuestRequest,
    Invocation,
    InvocationContext,
    bind_call,
    build_execute_request,
    invoke,
    parse_execute_response,
)

from ._capi import counting_capi
from ._common import Row, Workspace, execute_doc, median, ms, pick, wat_guest

AIM = 1.3
AIM_PY = 1.1
"""py-hello's aim: its guest work dwarfs the runner's fixed costs, so less overhead is left to hide."""
CAPI_AIM = 80
"""Calls into wasmtime's C API per WAT echo invocation (each releases and re-takes the GIL)."""
CAPI_ROUNDS = 20
_CONTEXT = InvocationContext(tenant_id="bench-tenant", extension_id="bench-ext", install_id="bench-install")


def bare_call(runtime: Runtime, component: Any, request: GuestRequest) -> Any:
    """Instantiate and call ``handler`` once, the plain wasmtime-py way, on this thread."""
    invocation = Invocation(_CONTEXT)
    with bind_call(CallState(invocation, trio_thread=False)):
        store = wasmtime.Store(runtime.engine.wasmtime)
        try:
            store.set_wasi(wasmtime.WasiConfig())
            store.set_epoch_deadline(1 << 62)
            instance = runtime.linker.instantiate(store, component)
            handler = instance.get_func(store, "handler")
            assert handler is not None
            response = parse_execute_response(handler(store, build_execute_request(request, _CONTEXT)))
            handler.post_return(store)
            return response
        finally:
            store.close()


async def _compare(ws: Workspace, runtime: Runtime, label: str, content_hash: str, path: str,
                   query: dict[str, str], rounds: int, *, aim: float, capi_aim: int | None) -> None:
    async with runtime.bundles.entry(content_hash) as entry:
        component = await runtime.bundles.component(entry)
    request = GuestRequest("GET", f"{path}?{'&'.join(f'{k}={v}' for k, v in query.items())}" if query else path,
                           [("accept", "application/json")], None)
    parsed = parse_execute_request(execute_doc(content_hash, path, query=query,
                                               headers={"accept": "application/json"}),
                                   max_body_bytes=runtime.settings.max_request_body_bytes)
    invocation = Invocation(_CONTEXT)

    async def via_execute() -> None:
        result = await execute(runtime, parsed)
        if result.error is not None:
            raise RuntimeError(f"execute() failed: {result.error}")

    async def via_invoke() -> None:
        await invoke(runtime.engine, runtime.linker, component, request, invocation, timeout=10)

    async def bare() -> None:
        bare_call(runtime, component, request)

    async def bare_thread() -> None:
        await trio.to_thread.run_sync(bare_call, runtime, component, request)

    sides: dict[str, Callable[[], Awaitable[None]]] = {
        "execute": via_execute, "invoke": via_invoke, "bare": bare, "thread": bare_thread,
    }
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for fn in sides.values():  # warm up
        for _ in range(3):
            await fn()
    order = list(sides.items())
    for i in range(rounds):
        # Rotated every round: no side always follows the same one (the one before leaves the caches and the
        # thread pool in its state; a fixed order charged that to one side).
        for name, fn in order[i % len(order):] + order[:i % len(order)]:
            t0 = time.perf_counter()
            await fn()
            samples[name].append(time.perf_counter() - t0)
    m = {name: median(values) for name, values in samples.items()}
    for side in ("execute", "invoke"):
        ratio = m[side] / m["bare"]
        ws.report.add(Row(
            "invoke",
            f"{label}: {side}() vs bare instantiate+call, in 1 process (median of {rounds}; bare in a worker "
            f"thread {ms(m['thread'])})",
            f"{side}() {ms(m[side])}",
            f"bare {ms(m['bare'])}",
            f"{ratio:.2f}×",
            f"≤ {aim}×",
            ratio <= aim,
        ))
    # Counted apart from the timed rounds: the counting wrapper costs a Python call per C call.
    calls: dict[str, float] = {}
    for name in ("execute", "bare"):
        with counting_capi() as counts:
            for _ in range(CAPI_ROUNDS):
                await sides[name]()
        counts.pop("wasmtime_engine_increment_epoch", None)  # the epoch ticker's, not the invocation's
        calls[name] = sum(counts.values()) / CAPI_ROUNDS
    ws.report.add(Row(
        "invoke",
        f"{label}: calls into wasmtime's C API per invocation (mean of {CAPI_ROUNDS})",
        f"execute() {calls['execute']:.0f}",
        f"bare wasmtime-py {calls['bare']:.0f}",
        f"{calls['execute']:.0f} calls",
        f"≤ {capi_aim}" if capi_aim is not None else "",
        None if capi_aim is None else calls["execute"] <= capi_aim,
    ))


async def run(ws: Workspace) -> None:
    quick = ws.quick
    settings = Settings(
        bind="127.0.0.1:0",
        var_dir=ws.fresh_dir("invoke-var"),
        bundle_store_base=ws.store_uri,
        cache_root=ws.warm_cache,
        ui_strict_validation=False,
    )
    py_hello = await ws.publish_sample("py-hello")
    echo = await ws.publish_component("echo", wat_guest("echo"))
    runtime = await Runtime.open(settings)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(runtime.run)
            started = time.perf_counter()
            await runtime.bundles.warm(py_hello)  # compiles once per run; later runners load the artifact
            await runtime.bundles.warm(echo)
            print(f"    · py-hello and echo ready in {time.perf_counter() - started:.1f} s (compile, then cached)")
            await _compare(ws, runtime, "py-hello GET /hello", py_hello, "/hello", {"name": "bench"},
                           pick(quick, 60, 300), aim=AIM_PY, capi_aim=None)
            await _compare(ws, runtime, "WAT echo", echo, "/bench", {}, pick(quick, 200, 1000), aim=AIM,
                           capi_aim=CAPI_AIM)
            nursery.cancel_scope.cancel()
    finally:
        await runtime.aclose()
