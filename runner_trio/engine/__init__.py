"""The wasmtime side of the runner: engine, shared Linker, value conversion, and ``invoke()`` under trio.

Public API::

    engine = WasmEngine(EngineConfig())             # one per process
    linker = build_linker(engine, [HttpCapability(fetcher), ...])   # once
    nursery.start_soon(engine.run_ticker)           # the one task advancing the epoch
    component = engine.compile(data)                # or engine.deserialize_file(path)
    response = await invoke(engine, linker, component, GuestRequest(...), Invocation(...), timeout=5.0)

Importing this package applies two checked patches to wasmtime-py (see ``_patches.py``) and the ``list<u8>``
fast path (see ``_values.py``).
"""

from __future__ import annotations

from . import _patches
from ._classify import classify_failure
from ._engine import COMPONENT_HEADER, DEFAULT_EPOCH_TICK, DEFAULT_OPT_LEVEL, EngineConfig, WasmEngine
from ._errors import (
    GUEST_ERROR_KINDS,
    ArtifactError,
    ComponentError,
    EngineConfigError,
    EngineError,
    GuestError,
    GuestErrorKind,
    TickerError,
)
from ._invoke import (
    DEFAULT_MAX_INSTANCES,
    DEFAULT_MAX_MEMORIES,
    DEFAULT_MAX_TABLE_ELEMENTS,
    DEFAULT_MAX_TABLES,
    DEFAULT_MEMORY_BYTES,
    HANDLER_EXPORT,
    invoke,
)
from ._linker import build_linker
from ._output import (
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MAX_OUTPUT_LINES,
    STREAM_LEVELS,
    OutputCapture,
)
from ._values import (
    GuestRequest,
    GuestResponse,
    build_execute_request,
    fast_bytes_installed,
    install_fast_bytes,
    parse_execute_response,
    stock_bytes_conversion,
)
from ._wasi import detect_wasip2_version

__all__ = [
    "COMPONENT_HEADER",
    "DEFAULT_EPOCH_TICK",
    "DEFAULT_MAX_INSTANCES",
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_MAX_MEMORIES",
    "DEFAULT_MAX_OUTPUT_BYTES",
    "DEFAULT_MAX_OUTPUT_LINES",
    "DEFAULT_MAX_TABLES",
    "DEFAULT_MAX_TABLE_ELEMENTS",
    "DEFAULT_MEMORY_BYTES",
    "DEFAULT_OPT_LEVEL",
    "GUEST_ERROR_KINDS",
    "HANDLER_EXPORT",
    "STREAM_LEVELS",
    "ArtifactError",
    "ComponentError",
    "EngineConfig",
    "EngineConfigError",
    "EngineError",
    "GuestError",
    "GuestErrorKind",
    "GuestRequest",
    "GuestResponse",
    "OutputCapture",
    "TickerError",
    "WasmEngine",
    "build_execute_request",
    "build_linker",
    "classify_failure",
    "detect_wasip2_version",
    "fast_bytes_installed",
    "install_fast_bytes",
    "invoke",
    "parse_execute_response",
    "stock_bytes_conversion",
]

_patches.install()
install_fast_bytes()
