"""Guest linear memories allocated by the runner, so that a refused growth is a fact the host observes.

wasmtime-py exposes no ``ResourceLimiter`` callback: ``Store.set_limits`` refuses a ``memory.grow`` past the
cap silently (the guest sees -1 and fails in its own words). To classify a failure as ``memory_limit`` from
a structured signal instead of the guest's stderr, the engine installs a host memory creator
(``wasmtime_config_host_memory_creator_set``): every linear memory is an anonymous mapping reserved here,
and the creator enforces the cap of the guest call running on this thread (``CallState.memory_cap``). A
refused creation or growth sets ``CallState.memory_refused`` before wasmtime hands -1 (or the instantiation
error) to the guest. The Store then gets no memory limit of its own (it would refuse first, silently).

Cost: wasmtime cannot map a module's data segments copy-on-write into memories it does not own, so they
are copied at each instantiation (measured: a componentize-py guest's instantiate + call 1.7 -> 5.8 ms).
``EngineConfig(observe_memory=False)`` keeps wasmtime's own memories (then a memory cap hit during a call
is reported as a plain ``trap``: never guessed from guest text).
"""

from __future__ import annotations

import ctypes
import itertools
import mmap
import threading
from dataclasses import dataclass
from typing import Any, Final

import wasmtime
from wasmtime import _ffi as ffi

__all__ = ["WASM_PAGE", "MemoryWatch", "current_watch", "install_memory_creator", "watch_memory"]

WASM_PAGE: Final = 64 * 1024
_HOST_PAGE: Final = mmap.PAGESIZE
_FALLBACK_RESERVATION: Final = 4 * 1024**3
"""Bytes reserved for a memory that wasmtime lets move (no static reservation) when no cap applies."""
_PROT_NONE: Final = 0
_PROT_READ_WRITE: Final = 0x1 | 0x2
_MAP_NORESERVE: Final = getattr(mmap, "MAP_NORESERVE", 0x4000)
_MAP_FAILED: Final = ctypes.c_void_p(-1).value

_libc = ctypes.CDLL(None, use_errno=True)
_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_mprotect = _libc.mprotect
_mprotect.restype = ctypes.c_int
_mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_munmap = _libc.munmap
_munmap.restype = ctypes.c_int
_munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


@dataclass(slots=True)
class MemoryWatch:
    """The memory cap of the guest call on this thread, and whether the guest ran into it.

    Attributes:
        cap: bytes each linear memory may hold.
        refused: a memory creation or growth past ``cap`` was refused (set on the guest's thread).
    """

    cap: int
    refused: bool = False


@dataclass(slots=True)
class _Region:
    base: int
    span: int  # bytes mapped (reservation + guard)
    size: int  # bytes accessible to the guest
    growable_to: int  # bytes the region can hold without moving


_local = threading.local()
_regions: dict[int, _Region] = {}
_keys = itertools.count(1)


class watch_memory:
    """``with watch_memory(cap) as watch:`` makes ``cap`` the limit of memories created or grown on this thread."""

    def __init__(self, cap: int) -> None:
        self._watch = MemoryWatch(cap)
        self._previous: MemoryWatch | None = None

    def __enter__(self) -> MemoryWatch:
        self._previous = getattr(_local, "watch", None)
        _local.watch = self._watch
        return self._watch

    def __exit__(self, *exc: object) -> None:
        _local.watch = self._previous


def current_watch() -> MemoryWatch | None:
    """The watch of the guest call on this thread, if any."""
    watch: MemoryWatch | None = getattr(_local, "watch", None)
    return watch


def _round_up(value: int) -> int:
    return (value + _HOST_PAGE - 1) // _HOST_PAGE * _HOST_PAGE


def _error(message: str) -> int:
    error = wasmtime.WasmtimeError(message)
    address: int | None = ctypes.cast(error._consume(), ctypes.c_void_p).value
    return address or 0


def _get_memory(env: Any, size_out: Any, maximum_out: Any) -> int:
    region = _regions[env]
    size_out[0] = region.size
    maximum_out[0] = region.growable_to
    return region.base


def _grow_memory(env: Any, new_size: int) -> int:
    # A C callback must never raise: every path returns 0 (grown) or an error pointer (growth refused).
    try:
        region = _regions[env]
        watch = current_watch()
        if watch is not None and new_size > watch.cap:
            watch.refused = True
            return _error(f"memory growth to {new_size} bytes exceeds memory limits (cap {watch.cap} bytes)")
        if new_size > region.growable_to:
            return _error(f"memory growth to {new_size} bytes refused: reserved {region.growable_to} bytes")
        if new_size > region.size and _mprotect(region.base, _round_up(new_size), _PROT_READ_WRITE) != 0:
            return _error(f"mprotect failed (errno {ctypes.get_errno()})")
        region.size = new_size
        return 0
    except BaseException as exc:
        return _error(f"memory growth failed: {type(exc).__name__}")


def _release(env: Any) -> None:
    region = _regions.pop(env, None)
    if region is not None:
        _munmap(region.base, region.span)


def _new_memory(
    env: Any, ty: Any, minimum: int, maximum: int, reserved: int, guard: int, memory_out: Any
) -> int:
    try:
        watch = current_watch()
        if watch is not None and minimum > watch.cap:
            watch.refused = True
            return _error(f"memory minimum size of {minimum} bytes exceeds memory limits (cap {watch.cap} bytes)")
        if reserved:
            growable_to = min(reserved, maximum)  # a static memory: wasmtime relies on the whole reservation
            reservation = reserved
        else:
            limit = maximum if watch is None else min(maximum, watch.cap)
            growable_to = reservation = _round_up(min(limit, _FALLBACK_RESERVATION))
        span = reservation + guard
        base = _mmap(None, span, _PROT_NONE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE, -1, 0)
        if base is None or base == _MAP_FAILED:
            return _error(f"could not reserve {span} bytes for a linear memory (errno {ctypes.get_errno()})")
        if minimum and _mprotect(base, _round_up(minimum), _PROT_READ_WRITE) != 0:
            _munmap(base, span)
            return _error(f"mprotect failed (errno {ctypes.get_errno()})")
        key = next(_keys)
        _regions[key] = _Region(base=base, span=span, size=minimum, growable_to=growable_to)
        out = memory_out[0]
        out.env = key
        out.get_memory = _GET_MEMORY
        out.grow_memory = _GROW_MEMORY
        out.finalizer = _RELEASE
        return 0
    except BaseException as exc:
        return _error(f"memory creation failed: {type(exc).__name__}")


# Module-level: the callbacks must outlive every engine and memory.
_GET_MEMORY: Final = ffi.wasmtime_memory_get_callback_t(_get_memory)
_GROW_MEMORY: Final = ffi.wasmtime_memory_grow_callback_t(_grow_memory)
_FINALIZER_T: Final = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_RELEASE: Final = _FINALIZER_T(_release)
_NEW_MEMORY: Final = ffi.wasmtime_new_memory_callback_t(_new_memory)
_CREATOR: Final = ffi.wasmtime_memory_creator_t(None, _NEW_MEMORY, _FINALIZER_T(lambda env: None))


def install_memory_creator(config: wasmtime.Config) -> None:
    """Allocate the memories of engines built from ``config`` here (copy-on-write images off: required)."""
    ffi.wasmtime_config_memory_init_cow_set(config.ptr(), False)
    ffi.wasmtime_config_host_memory_creator_set(config.ptr(), ctypes.byref(_CREATOR))
