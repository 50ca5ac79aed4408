"""The extension runner: executes WebAssembly component handlers under trio with wasmtime.

Public API::

    app = create_app(Settings.from_env())          # a Quart-trio app
    await serve(settings, task_status=...)         # Hypercorn's trio worker, SIGTERM drains
    await serve_workers(settings, task_status=...) # python -m runner_trio: RUNNER_WORKERS processes, one port

Embedded (no HTTP; what the benchmarks measure)::

    runtime = await Runtime.open(settings)        # store, cache, engine, capabilities
    result = await execute(runtime, parse_execute_request(doc, max_body_bytes=...))
"""

from ._app import create_app, serve
from ._config import Settings
from ._errors import (
    BodyTooLarge,
    BodyTooLargeForMemory,
    BundleUnavailable,
    ConfigError,
    ExecuteFailed,
    MissingRoutingHeaders,
    Overloaded,
    RequestInvalid,
    RunnerError,
    SecretDecryptFailed,
    UnknownCapabilities,
)
from ._execute import execute
from ._runtime import Runtime
from ._wire import parse_execute_json, parse_execute_request
from ._workers import serve_workers

__all__ = [
    "BodyTooLarge",
    "BodyTooLargeForMemory",
    "BundleUnavailable",
    "ConfigError",
    "ExecuteFailed",
    "MissingRoutingHeaders",
    "Overloaded",
    "RequestInvalid",
    "RunnerError",
    "Runtime",
    "SecretDecryptFailed",
    "Settings",
    "UnknownCapabilities",
    "create_app",
    "execute",
    "parse_execute_json",
    "parse_execute_request",
    "serve",
    "serve_workers",
]
