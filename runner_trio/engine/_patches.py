"""Two targeted changes to wasmtime-py 50's component layer, applied once when the engine is imported.

1. **Exception hand-off per thread.** When a host callback raises, wasmtime-py keeps the exception in a
   module-global variable and re-raises it from whichever thread's guest call returns next: under
   concurrency, threads got each other's exceptions. Host functions are wrapped (``host_function``), but the
   argument/result conversion around them runs inside wasmtime-py's callback too. Here the callback catcher
   stashes every exception thread-locally (``stash_host_exception``) and the global hand-off is disabled;
   ``invoke()`` re-raises what its own thread stashed.
2. **Explicit result cases.** wasmtime-py picks the case of an untagged ``result`` by the Python type of the
   value; for ``result<option<T>, E>`` every value matches ``ok`` (an ``option`` accepts ``object``), so an
   error could not be returned at all. Values of type :class:`Ok` / :class:`Err` name their case.

Each patch checks the internals it replaces; :func:`install` raises if they are not the expected ones, so a
wasmtime-py upgrade fails loudly at import instead of misbehaving under load.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime.component import _enter, _linker, _types

from ._errors import EngineError
from ._host import Err, Ok, stash_host_exception

__all__ = ["install"]

_installed = False


def _catch_exceptions(store_raw: Any, func: Callable[[wasmtime.StoreContext], None]) -> int:
    # Same contract as wasmtime.component._enter.catch_exceptions, minus the module-global hand-off.
    store = wasmtime.StoreContext(store_raw)
    error: wasmtime.WasmtimeError | None = None
    try:
        func(store)
    except wasmtime.WasmtimeError as exc:
        error = exc
    except BaseException as exc:
        stash_host_exception(exc)
        error = wasmtime.WasmtimeError(f"host callback failed: {type(exc).__name__}")
    finally:
        store._invalidate()
    if error is None:
        return 0
    address: int = ctypes.cast(error._consume(), ctypes.c_void_p).value or 0
    return address


def _no_global_exception() -> None:
    # Replaces _enter.maybe_raise_last_exn: exceptions travel per thread, through the stash.
    return None


_stock_lower = _types.VariantLikeType._lower


def _lower(self: Any, store: Any, val: Any) -> Any:
    if isinstance(val, (Ok, Err)) and isinstance(self, _types.ResultType):
        for name, ty in self._cases():
            if name != val.tag:
                continue
            if ty is None:
                if val.payload is not None:
                    raise TypeError(f"result case {name!r} takes no payload")
                return (name, None)
            raw = ffi.wasmtime_component_val_t()
            ty.convert_to_c(store, val.payload, ctypes.pointer(raw))
            return (name, ffi.wasmtime_component_val_new(ctypes.byref(raw)))
        raise ValueError(f"result has no case {val.tag!r}")
    return _stock_lower(self, store, val)


def _check_internals() -> None:
    missing = [
        label
        for label, present in (
            ("_enter.catch_exceptions", callable(getattr(_enter, "catch_exceptions", None))),
            ("_enter.maybe_raise_last_exn", callable(getattr(_enter, "maybe_raise_last_exn", None))),
            ("_linker.catch_exceptions", callable(getattr(_linker, "catch_exceptions", None))),
            ("_types.VariantLikeType._lower", callable(getattr(_types.VariantLikeType, "_lower", None))),
            ("_types.ResultType", isinstance(getattr(_types, "ResultType", None), type)),
            ("ffi.wasmtime_component_val_new", callable(getattr(ffi, "wasmtime_component_val_new", None))),
        )
        if not present
    ]
    if missing:
        raise EngineError(
            "wasmtime-py internals changed (missing: " + ", ".join(missing) + "); "
            "runner_trio.engine supports wasmtime 50"
        )


def install() -> None:
    """Apply both patches (idempotent).

    Raises:
        EngineError: wasmtime-py's internals are not the expected ones.
    """
    global _installed
    if _installed:
        return
    _check_internals()
    # Looked up at call time by func_impl / resource_dtor_impl (same contract, a plain int for the pointer).
    _linker.catch_exceptions = _catch_exceptions  # type: ignore[attr-defined,assignment]
    _enter.maybe_raise_last_exn = _no_global_exception  # looked up at call time by enter_wasm
    _types.VariantLikeType._lower = _lower  # type: ignore[method-assign]
    _installed = True
