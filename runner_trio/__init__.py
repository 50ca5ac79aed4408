"""The extension runner: executes WebAssembly component handlers under trio with wasmtime.

Public API::

    app = create_app(Settings.from_env())          # a Quart-trio app
    await serve(settings, task_status=...)         # Hypercorn's trio worker, SIGTERM drains
"""

from ._app import create_app, serve
from ._config import Settings
from ._errors import (
    BodyTooLarge,
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

__all__ = [
    "BodyTooLarge",
    "BundleUnavailable",
    "ConfigError",
    "ExecuteFailed",
    "MissingRoutingHeaders",
    "Overloaded",
    "RequestInvalid",
    "RunnerError",
    "SecretDecryptFailed",
    "Settings",
    "UnknownCapabilities",
    "create_app",
    "serve",
]
