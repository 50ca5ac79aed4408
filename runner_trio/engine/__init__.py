"""The wasmtime side of the runner: engine, Linker, host-function glue, value conversion, ``invoke()`` under trio.

Public API::

    engine = WasmEngine(EngineConfig())             # one per process
    linker = build_linker(engine, capabilities)     # once; each capability defines its interface (``link``)
    nursery.start_soon(engine.run_ticker)           # the one task advancing the epoch
    component = engine.compile(data)                # or engine.deserialize_file(path)
    response = await invoke(engine, linker, component, GuestRequest(...), Invocation(...), timeout=5.0)

Host functions are written as ``fn(invocation, *args)`` and wrapped with :func:`host_function`; they return
WIT values (:func:`wit_record`, :class:`Ok` / :class:`Err`) and reach async backends with :func:`call_backend`.
The engine imports nothing from ``runner_trio.capabilities``: capabilities build on this package.
``bind_call(CallState(invocation, trio_thread=False))`` drives a guest synchronously outside ``invoke()``.

An invocation may carry a journal (:class:`CallRecorder` records every host call with its arguments and result,
:class:`CallReplayer` answers them from a record, see ``_journal.py``).

Importing this package applies two checked patches to wasmtime-py (see ``_patches.py``), the ``list<u8>``
fast path (see ``_values.py``) and the memo of component type reflection, read once per compiled component
instead of on every call (see ``_reflect.py``).
"""

from __future__ import annotations

from . import _patches
from ._callstate import CallState, bind_call, current_call
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
from ._host import (
    Err,
    LinkerInstanceBuilder,
    Ok,
    call_backend,
    host_function,
    mapping_to_record,
    record_to_mapping,
    stash_host_exception,
    take_host_exception,
    wit_record,
)
from ._invocation import (
    EVENT_LEVELS,
    EventLevel,
    EventSink,
    EventStream,
    HostScope,
    HostUser,
    Invocation,
    InvocationContext,
    InvocationCounters,
    ScopeUsage,
    SecretsProvider,
    UserInfo,
    bind_invocation,
    current_invocation,
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
from ._journal import (
    LIVE_FUNCTIONS,
    CallJournal,
    CallRecorder,
    CallReplayer,
    ReplayDivergence,
    decode_value,
    encode_value,
    redact,
    secret_placeholder,
)
from ._linker import Capability, build_linker
from ._output import (
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MAX_OUTPUT_LINES,
    STREAM_LEVELS,
    OutputCapture,
)
from ._reflect import install_type_memo
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
    "EVENT_LEVELS",
    "GUEST_ERROR_KINDS",
    "HANDLER_EXPORT",
    "LIVE_FUNCTIONS",
    "STREAM_LEVELS",
    "ArtifactError",
    "CallJournal",
    "CallRecorder",
    "CallReplayer",
    "CallState",
    "Capability",
    "ComponentError",
    "EngineConfig",
    "EngineConfigError",
    "EngineError",
    "Err",
    "EventLevel",
    "EventSink",
    "EventStream",
    "GuestError",
    "GuestErrorKind",
    "GuestRequest",
    "GuestResponse",
    "HostScope",
    "HostUser",
    "Invocation",
    "InvocationContext",
    "InvocationCounters",
    "LinkerInstanceBuilder",
    "Ok",
    "OutputCapture",
    "ReplayDivergence",
    "ScopeUsage",
    "SecretsProvider",
    "TickerError",
    "UserInfo",
    "WasmEngine",
    "bind_call",
    "bind_invocation",
    "build_execute_request",
    "build_linker",
    "call_backend",
    "classify_failure",
    "current_call",
    "current_invocation",
    "decode_value",
    "detect_wasip2_version",
    "encode_value",
    "fast_bytes_installed",
    "host_function",
    "install_fast_bytes",
    "invoke",
    "mapping_to_record",
    "parse_execute_response",
    "record_to_mapping",
    "redact",
    "secret_placeholder",
    "stash_host_exception",
    "stock_bytes_conversion",
    "take_host_exception",
    "wit_record",
]

_patches.install()
install_fast_bytes()
install_type_memo()
