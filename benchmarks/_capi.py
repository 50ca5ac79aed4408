"""Counting calls into wasmtime's C API, for the benchmarks only (never imported by the services).

Every C function wasmtime-py uses is a ctypes function pointer stored in ``wasmtime._bindings`` as
``_<name>`` and called through a one-line wrapper ``<name>(...)`` that looks the pointer up as a module global
at call time. Replacing those globals with counting callables counts every call made through wasmtime-py (and
through the runner's own uses of ``wasmtime._ffi``), whichever thread makes it. Each such call releases and
re-takes the GIL, which is why their number matters under concurrency.
"""

from __future__ import annotations

import ctypes
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from wasmtime import _bindings

_FUNC_PTR: Any = ctypes.CFUNCTYPE(None).__base__  # _CFuncPtr, the base of every ctypes function pointer

__all__ = ["counting_capi", "timing_capi"]


def _counting(name: str, fn: Callable[..., Any], counts: Counter[str]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        counts[name] += 1
        return fn(*args)

    return call


@contextmanager
def counting_capi() -> Iterator[Counter[str]]:
    """Count C API calls, by function name, made while the block runs (process-wide, every thread)."""
    originals = {
        name: value
        for name, value in vars(_bindings).items()
        if name.startswith("_") and isinstance(value, _FUNC_PTR)
    }
    counts: Counter[str] = Counter()
    for name, fn in originals.items():
        setattr(_bindings, name, _counting(name[1:], fn, counts))
    try:
        yield counts
    finally:
        for name, fn in originals.items():
            setattr(_bindings, name, fn)


@contextmanager
def timing_capi() -> Iterator[Counter[str]]:
    """Seconds spent inside each C API function while the block runs (process-wide; for one thread's work)."""
    originals = {
        name: value
        for name, value in vars(_bindings).items()
        if name.startswith("_") and isinstance(value, _FUNC_PTR)
    }
    spent: Counter[str] = Counter()

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args)
            finally:
                spent[name] += time.perf_counter() - t0  # type: ignore[assignment]

        return call

    for name, fn in originals.items():
        setattr(_bindings, name, timed(name[1:], fn))
    try:
        yield spent
    finally:
        for name, fn in originals.items():
            setattr(_bindings, name, fn)
