"""``invoke()``: one guest call in a fresh Store, in a worker thread, under a trio cancel scope.

The guest runs in ``trio.to_thread.run_sync(..., abandon_on_cancel=False)``: the thread is never abandoned.
Cancellation reaches it through the epoch-deadline callback (and through WASI waits, see ``_wasi.py``): when
the awaiting task is cancelled, the guest traps within about one epoch tick, the thread returns, and a
checkpoint lets trio deliver the cancellation. Expiry of the invocation's own deadline becomes
``GuestError("timeout")``; an outer cancellation (client disconnect, shutdown) propagates as ``Cancelled``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass
from typing import Final, Protocol, cast, final

import trio
import wasmtime
from wasmtime.component import Component, Linker

from ._callstate import CallState, bind_call, in_trio_thread, install_epoch_callback
from ._classify import FailureSignals, classify_failure, summarize
from ._engine import WasmEngine
from ._errors import GuestError, TickerError
from ._host import take_host_exception
from ._invocation import Invocation
from ._linker import unresolved_import
from ._memory import MemoryWatch, watch_memory
from ._output import DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MAX_OUTPUT_LINES, OutputCapture
from ._reflect import ExportFunction, export_function
from ._values import GuestRequest, GuestResponse, build_execute_request, parse_execute_response
from ._wasi import new_wasi_config

__all__ = [
    "DEFAULT_MAX_INSTANCES",
    "DEFAULT_MAX_MEMORIES",
    "DEFAULT_MAX_TABLES",
    "DEFAULT_MAX_TABLE_ELEMENTS",
    "DEFAULT_MEMORY_BYTES",
    "HANDLER_EXPORT",
    "invoke",
]

HANDLER_EXPORT: Final = "handler"
DEFAULT_MEMORY_BYTES: Final = 128 * 1024 * 1024
"""Cap of each linear memory of a guest."""
DEFAULT_MAX_MEMORIES: Final = 16
DEFAULT_MAX_INSTANCES: Final = 64
"""Core module instances per Store (toolchain guests use about ten)."""
DEFAULT_MAX_TABLES: Final = 64
DEFAULT_MAX_TABLE_ELEMENTS: Final = 1_000_000
"""Elements of each table (a JavaScript engine's function table holds tens of thousands)."""


_NO_LIMIT: Final = -1  # wasmtime-py's "unlimited" for Store.set_limits


@dataclass(frozen=True, slots=True)
class _Limits:
    memory_bytes: int
    max_memories: int
    max_instances: int
    max_tables: int
    max_table_elements: int
    max_output_bytes: int
    max_output_lines: int
    max_line_bytes: int


@dataclass(slots=True)
class _Outcome:
    response: GuestResponse | None = None
    error: GuestError | None = None
    host_exception: BaseException | None = None
    interrupted: bool = False


@final
class _GuestCall:
    """Everything one invocation does on its worker thread."""

    def __init__(
        self,
        engine: WasmEngine,
        linker: Linker,
        component: Component,
        request: GuestRequest,
        invocation: Invocation,
        limits: _Limits,
    ) -> None:
        self._engine = engine
        self._linker = linker
        self._component = component
        self._handler: ExportFunction = export_function(component, HANDLER_EXPORT)
        self._request = request
        self._invocation = invocation
        self._limits = limits

    def run(self) -> _Outcome:
        try:
            trio_thread = in_trio_thread()
        except trio.Cancelled:
            return _Outcome(interrupted=True)
        invocation = self._invocation
        limits = self._limits
        capture = OutputCapture(
            invocation.emit,
            invocation.counters,
            max_bytes=limits.max_output_bytes,
            max_lines=limits.max_output_lines,
            max_line_bytes=limits.max_line_bytes,
        )
        state = CallState(invocation, trio_thread=trio_thread)
        # Usage: this thread's CPU time (guest code, instantiation and the host functions' own work; not the
        # waits on trio or WASI sleeps) and wall time. Two clock reads each per invocation (about 1 µs), and
        # exact where an epoch count would be in 5 ms steps of wall time (docs/operations.md, Usage metering).
        cpu_started = time.thread_time_ns()
        wall_started = time.monotonic_ns()
        try:
            with self._engine.guest_call(), bind_call(state), watch_memory(limits.memory_bytes) as watch:
                take_host_exception()  # nothing left over from an earlier call on this thread
                store = wasmtime.Store(self._engine.wasmtime)
                try:
                    return self._run(store, state, capture, watch)
                finally:
                    # Drops the instance, its WASI context and the output callbacks; a poisoned instance with it.
                    store.close()
                    capture.close()
        finally:
            counters = invocation.counters
            counters.add_pair("guest_runs", 1, "guest_cpu_us", (time.thread_time_ns() - cpu_started) // 1000)
            counters.add("guest_wall_us", (time.monotonic_ns() - wall_started) // 1000)

    def _run(self, store: wasmtime.Store, state: CallState, capture: OutputCapture, watch: MemoryWatch) -> _Outcome:
        limits = self._limits
        observed = self._engine.config.observe_memory
        store.set_limits(
            # When the engine observes memory its creator enforces the cap (and records a refusal): the
            # Store must not refuse first (it does so silently), so it gets no memory limit of its own.
            memory_size=_NO_LIMIT if observed else limits.memory_bytes,
            table_elements=limits.max_table_elements,
            instances=limits.max_instances,
            tables=limits.max_tables,
            memories=limits.max_memories,
        )
        store.set_wasi(new_wasi_config(capture.writer("stdout"), capture.writer("stderr")))
        install_epoch_callback(store)
        try:
            instance = self._linker.instantiate(store, self._component)
        except wasmtime.WasmtimeError as exc:
            outcome = self._failed(exc, "instantiate", state, capture, watch)
            if outcome.error is not None and outcome.error.kind == "link":
                outcome.error.subject = unresolved_import(self._engine, self._component, exc)
            return outcome
        handler = self._handler.get(instance, store)
        if handler is None:
            return _Outcome(error=GuestError("link", f"the component does not export `{HANDLER_EXPORT}`"))
        argument = build_execute_request(self._request, self._invocation.context)
        try:
            result = handler(store, argument)
        except wasmtime.WasmtimeError as exc:
            return self._failed(exc, "call", state, capture, watch)
        except (TypeError, ValueError, AttributeError) as exc:
            # Only the conversion of our argument or of its result raises these here: the export's type is
            # not `func(execute-request) -> execute-response`.
            return _Outcome(error=GuestError("link", f"`{HANDLER_EXPORT}` has an unexpected type: {exc}"))
        try:
            response = parse_execute_response(result)
        except (TypeError, ValueError, AttributeError) as exc:
            return _Outcome(error=GuestError("link", f"`{HANDLER_EXPORT}` returned an unexpected value: {exc}"))
        try:
            handler.post_return(store)
        except wasmtime.WasmtimeError as exc:
            return self._failed(exc, "call", state, capture, watch)
        return _Outcome(response=response)

    @staticmethod
    def _failed(
        exc: wasmtime.WasmtimeError, phase: str, state: CallState, capture: OutputCapture, watch: MemoryWatch
    ) -> _Outcome:
        host_exception = take_host_exception()
        if state.interrupted or isinstance(host_exception, trio.Cancelled):
            return _Outcome(interrupted=True)
        if host_exception is not None:
            return _Outcome(host_exception=host_exception)
        tail = capture.stderr_tail
        signals = FailureSignals(interrupted=state.interrupted, memory_refused=watch.refused)
        kind, message = classify_failure(exc, phase=phase, signals=signals)
        return _Outcome(error=GuestError(kind, message, detail=str(exc), stderr_tail=tail))


class ThreadLimiter(Protocol):
    """What ``invoke`` takes as ``limiter``: a ``trio.CapacityLimiter``, or the runner's ``GuestThreads``."""

    def acquire_on_behalf_of_nowait(self, borrower: object) -> None: ...

    async def acquire_on_behalf_of(self, borrower: object) -> None: ...

    def release_on_behalf_of(self, borrower: object) -> None: ...


@final
class _Eager:
    """``limiter`` for ``trio.to_thread.run_sync`` (which takes any object with these two methods): a free thread
    is taken without the schedule point ``CapacityLimiter.acquire_on_behalf_of`` adds even then. Waiting for the
    guest's thread is a schedule point anyway; the extra one cost every invocation a pass of the event loop."""

    __slots__ = ("_limiter",)

    def __init__(self, limiter: ThreadLimiter) -> None:
        self._limiter = limiter

    async def acquire_on_behalf_of(self, borrower: object) -> None:
        try:
            self._limiter.acquire_on_behalf_of_nowait(borrower)  # FIFO kept: refused while others wait
        except trio.WouldBlock:
            await self._limiter.acquire_on_behalf_of(borrower)

    def release_on_behalf_of(self, borrower: object) -> None:
        self._limiter.release_on_behalf_of(borrower)


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not value > 0 or (isinstance(value, float) and not math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, not {value!r}")


@functools.lru_cache(maxsize=64, typed=True)  # typed: True is not a valid 1
def _limits(
    memory_bytes: int,
    max_memories: int,
    max_instances: int,
    max_tables: int,
    max_table_elements: int,
    max_output_bytes: int,
    max_output_lines: int,
    max_line_bytes: int,
) -> _Limits:
    """The checked limits (a runner uses a handful of combinations: checked once each)."""
    if max_output_bytes < 0 or max_output_lines < 0:
        raise ValueError("max_output_bytes and max_output_lines must not be negative")
    for name, value in (
        ("memory_bytes", memory_bytes),
        ("max_memories", max_memories),
        ("max_instances", max_instances),
        ("max_tables", max_tables),
        ("max_table_elements", max_table_elements),
        ("max_line_bytes", max_line_bytes),
    ):
        _positive(name, value)
    return _Limits(
        memory_bytes=memory_bytes,
        max_memories=max_memories,
        max_instances=max_instances,
        max_tables=max_tables,
        max_table_elements=max_table_elements,
        max_output_bytes=max_output_bytes,
        max_output_lines=max_output_lines,
        max_line_bytes=max_line_bytes,
    )


async def invoke(
    engine: WasmEngine,
    linker: Linker,
    component: Component,
    request: GuestRequest,
    invocation: Invocation,
    *,
    timeout: float,  # noqa: ASYNC109 - a per-invocation limit the guest's thread also enforces, not a wait
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
    max_memories: int = DEFAULT_MAX_MEMORIES,
    max_instances: int = DEFAULT_MAX_INSTANCES,
    max_tables: int = DEFAULT_MAX_TABLES,
    max_table_elements: int = DEFAULT_MAX_TABLE_ELEMENTS,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    max_output_lines: int = DEFAULT_MAX_OUTPUT_LINES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    limiter: ThreadLimiter | None = None,
) -> GuestResponse:
    """Call the guest's ``handler`` once, in a fresh Store, within ``timeout`` seconds.

    Args:
        engine: the process's engine; its epoch ticker must be running.
        linker: the shared Linker (:func:`build_linker`).
        component: the compiled guest.
        request: the HTTP half of ``execute-request``.
        invocation: context, grants, user, secrets and event sink; ``invoke`` fills in the deadlines.
        timeout: seconds the guest may run (instantiation included).
        memory_bytes: cap of each linear memory.
        max_memories, max_instances, max_tables, max_table_elements: caps of the Store's other resources.
        max_output_bytes, max_output_lines: stdout plus stderr forwarded as events; the rest is dropped,
            counted (``output_bytes_dropped``) and reported by one final event.
        max_line_bytes: longer output lines are cut into several events.
        limiter: the thread limiter the guest's worker thread is taken from (the runner's own, apart from
            trio's default one used for DNS and disk); None uses trio's default.

    Returns:
        The guest's response.

    Raises:
        GuestError: ``timeout``, ``memory_limit``, ``trap`` or ``link``.
        TickerError: the engine's epoch ticker is not running.
        trio.Cancelled: the calling task was cancelled from outside (the guest is stopped first).
        BaseException: whatever a host function raised (a host bug), re-raised unchanged.
    """
    if not engine.ticking:
        raise TickerError("the engine's epoch ticker is not running (start engine.run_ticker())")
    _positive("timeout", timeout)
    limits = _limits(
        memory_bytes,
        max_memories,
        max_instances,
        max_tables,
        max_table_elements,
        max_output_bytes,
        max_output_lines,
        max_line_bytes,
    )
    bound = dataclasses.replace(
        invocation,
        deadline=trio.current_time() + timeout,
        thread_deadline=time.monotonic() + timeout,
        trio_token=trio.lowlevel.current_trio_token(),
    )
    call = _GuestCall(engine, linker, component, request, bound, limits)
    outcome: _Outcome | None = None
    with trio.move_on_at(bound.deadline) as scope:
        # trio documents the limiter as "CapacityLimiter-like" (the two methods); its annotation is narrower.
        threads = cast(trio.CapacityLimiter,
                       _Eager(limiter if limiter is not None else trio.to_thread.current_default_thread_limiter()))
        outcome = await trio.to_thread.run_sync(call.run, abandon_on_cancel=False, limiter=threads)
        if outcome.interrupted:
            # The guest stopped because this task is being cancelled: let trio deliver that cancellation
            # (absorbed by this scope when it is our deadline, propagated when it comes from outside).
            await trio.lowlevel.checkpoint()
    if outcome is None or outcome.interrupted or scope.cancelled_caught:
        raise GuestError("timeout", f"the guest did not finish within {timeout:g} s")
    if outcome.host_exception is not None:
        raise outcome.host_exception
    if outcome.error is not None:
        raise outcome.error
    if outcome.response is None:  # pragma: no cover - every path above sets one of the fields
        raise GuestError("trap", summarize(RuntimeError("guest call produced no outcome")))
    return outcome.response
