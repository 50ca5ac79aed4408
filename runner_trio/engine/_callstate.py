"""Engine-private state of one guest call on its worker thread, and the epoch-deadline callback.

The store's epoch deadline is one tick; at each tick wasmtime calls :func:`_on_epoch_deadline` on the thread
running the guest. It asks trio whether the task awaiting the guest is cancelled (deadline, client
disconnect, shutdown): if so the guest traps, else it runs one more tick. The callback goes through
wasmtime's raw binding (``wasmtime_store_epoch_deadline_callback``), which wasmtime-py does not wrap.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, final

import trio
import wasmtime
from wasmtime import _ffi as ffi
from wasmtime.component import ResourceHost

from ._invocation import Invocation, bind_invocation

__all__ = [
    "DEFAULT_DEADLINE_GRACE",
    "POLLABLE_TYPE",
    "CallState",
    "bind_call",
    "current_call",
    "in_trio_thread",
    "install_epoch_callback",
]

DEFAULT_DEADLINE_GRACE: Final = 0.05
"""Seconds past the deadline after which a guest stops even if trio never cancelled it (no trio loop)."""

WAIT_SLICE_NS: Final = 5_000_000
"""Longest sleep between cancellation checks while a guest waits on a WASI pollable."""

POLLABLE_TYPE: Final = 0x616C_6761
"""Host resource type id of the ``wasi:io/poll`` pollables this runner hands out ("alga")."""

_UPDATE_DEADLINE_CONTINUE: Final = 0  # wasmtime_update_deadline_kind_t: keep running synchronously


def in_trio_thread() -> bool:
    """Whether this thread was started by ``trio.to_thread`` (so trio can be asked about cancellation).

    Raises:
        trio.Cancelled: the awaiting task is already cancelled.
    """
    try:
        trio.from_thread.check_cancelled()
    except RuntimeError:
        return False
    return True


@final
class CallState:
    """What the engine keeps about the guest call running on this thread.

    Attributes:
        invocation: the invocation being served.
        interrupted: set when the guest was stopped because the invocation was cancelled or ran out of time.
    """

    def __init__(self, invocation: Invocation, *, trio_thread: bool, grace: float = DEFAULT_DEADLINE_GRACE) -> None:
        self.invocation = invocation
        self.interrupted = False
        self._trio_thread = trio_thread
        self._hard_deadline = invocation.thread_deadline + grace
        self._pollables: dict[int, int] = {}
        self._next_rep = 1

    def should_stop(self) -> bool:
        """True when the awaiting trio task is cancelled, or the deadline is well past (no trio)."""
        if self._trio_thread:
            try:
                trio.from_thread.check_cancelled()
            except trio.Cancelled:
                return True
        return time.monotonic() > self._hard_deadline

    def interrupt(self, what: str) -> wasmtime.WasmtimeError:
        """Mark the call interrupted and return the error that traps the guest."""
        self.interrupted = True
        return wasmtime.WasmtimeError(f"guest interrupted ({what}): invocation cancelled or out of time")

    # -- pollables (see _wasi.py) -------------------------------------------------------------------------

    def new_pollable(self, ready_at_ns: int) -> ResourceHost:
        """A pollable ready once ``time.monotonic_ns() >= ready_at_ns`` (0: always ready)."""
        rep = self._next_rep
        self._next_rep += 1
        self._pollables[rep] = ready_at_ns
        return ResourceHost.own(rep, POLLABLE_TYPE)

    def ready_at(self, rep: int) -> int:
        try:
            return self._pollables[rep]
        except KeyError:
            raise wasmtime.WasmtimeError(f"unknown pollable {rep}") from None

    def drop_pollable(self, rep: int) -> None:
        self._pollables.pop(rep, None)

    def wait_until(self, ready_at_ns: int) -> None:
        """Sleep until ``ready_at_ns``, checking for cancellation at least every :data:`WAIT_SLICE_NS`.

        Raises:
            wasmtime.WasmtimeError: the invocation was cancelled or ran out of time (traps the guest).
        """
        while True:
            now = time.monotonic_ns()
            if now >= ready_at_ns:
                return
            if self.should_stop():
                raise self.interrupt("waiting on a WASI pollable")
            time.sleep(min(ready_at_ns - now, WAIT_SLICE_NS) / 1e9)


_local = threading.local()


@contextmanager
def bind_call(state: CallState) -> Iterator[CallState]:
    """Make ``state`` (and its invocation) current on this thread for the block."""
    previous = getattr(_local, "call", None)
    _local.call = state
    try:
        with bind_invocation(state.invocation):
            yield state
    finally:
        _local.call = previous


def current_call() -> CallState:
    """The guest call running on this thread.

    Raises:
        LookupError: no guest call is bound to this thread.
    """
    state: CallState | None = getattr(_local, "call", None)
    if state is None:
        raise LookupError("no guest call is running on this thread")
    return state


_EpochCallback = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.POINTER(ffi.wasmtime_context_t),
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(ffi.wasmtime_update_deadline_kind_t),
)
_NO_FINALIZER: Final = ctypes.cast(0, ctypes.CFUNCTYPE(None, ctypes.c_void_p))


def _trap(message: str | wasmtime.WasmtimeError) -> int:
    error = message if isinstance(message, wasmtime.WasmtimeError) else wasmtime.WasmtimeError(message)
    address: int | None = ctypes.cast(error._consume(), ctypes.c_void_p).value
    return address or 0


def _epoch_deadline(context: Any, data: Any, delta: Any, kind: Any) -> int:
    # A C callback must never raise: every path returns 0 (continue) or an error pointer (trap).
    try:
        state: CallState | None = getattr(_local, "call", None)
        if state is not None and state.should_stop():
            return _trap(state.interrupt("epoch deadline"))
        delta[0] = 1
        kind[0] = _UPDATE_DEADLINE_CONTINUE
        return 0
    except BaseException as exc:
        return _trap(f"epoch deadline callback failed: {type(exc).__name__}")


_ON_EPOCH_DEADLINE: Final = _EpochCallback(_epoch_deadline)  # module-level: must outlive every store


def install_epoch_callback(store: wasmtime.Store) -> None:
    """Interrupt checks every epoch tick: deadline of 1 tick, then :func:`_epoch_deadline` decides."""
    store.set_epoch_deadline(1)
    ffi.wasmtime_store_epoch_deadline_callback(store.ptr(), _ON_EPOCH_DEADLINE, None, _NO_FINALIZER)
