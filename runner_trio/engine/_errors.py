"""Errors of the engine package.

The tree::

    EngineError               base class; ``code`` is stable
    ├── EngineConfigError     an engine configuration rejected before wasmtime sees it (``engine_config``)
    ├── TickerError           the epoch ticker is not running, or a second one was started (``ticker``)
    ├── ComponentError        bytes that are not a component, or do not compile (``invalid_component``)
    ├── ArtifactError         a precompiled artifact that cannot be loaded: a cache miss (``artifact_unusable``)
    └── GuestError            an invocation failed in the guest (``code`` = ``kind``):
                              ``timeout`` | ``memory_limit`` | ``trap`` | ``link``

An exception raised by a host function is not an engine error: ``invoke()`` re-raises it unchanged.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "GUEST_ERROR_KINDS",
    "ArtifactError",
    "ComponentError",
    "EngineConfigError",
    "EngineError",
    "GuestError",
    "GuestErrorKind",
    "TickerError",
]

GuestErrorKind = Literal["timeout", "memory_limit", "trap", "link"]
GUEST_ERROR_KINDS: Final[tuple[GuestErrorKind, ...]] = ("timeout", "memory_limit", "trap", "link")


class EngineError(Exception):
    """Base class of the engine's errors."""

    code: str = "engine_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EngineConfigError(EngineError):
    """An invalid engine configuration (wasmtime would abort the process on some of them)."""

    code = "engine_config"


class TickerError(EngineError):
    """The epoch ticker is not running (no guest could be interrupted), or is already running."""

    code = "ticker"


class ComponentError(EngineError):
    """The bytes are not a WebAssembly component (binary format), or wasmtime cannot compile them."""

    code = "invalid_component"


class ArtifactError(EngineError):
    """A precompiled artifact cannot be loaded (other wasmtime version or config, damaged file): recompile."""

    code = "artifact_unusable"


class GuestError(EngineError):
    """An invocation failed inside the guest.

    Attributes:
        kind: ``timeout`` (deadline, or interrupted), ``memory_limit`` (a memory cap was hit), ``trap`` (the
            guest trapped or exited), ``link`` (imports or the ``handler`` export do not fit this runner).
        detail: wasmtime's full message (with the wasm backtrace), for logs.
        stderr_tail: the last bytes the guest wrote to stderr (a Python guest's traceback lands there).
        subject: what the failure is about, when there is one thing: the import a ``link`` failure could not
            resolve (one of the component's own import names, never free text).
    """

    def __init__(
        self, kind: GuestErrorKind, message: str, *, detail: str = "", stderr_tail: str = "", subject: str = ""
    ) -> None:
        if kind not in GUEST_ERROR_KINDS:
            raise ValueError(f"unknown guest error kind {kind!r}")
        text = message if not stderr_tail else f"{message}\n--- guest stderr (tail) ---\n{stderr_tail}"
        super().__init__(text)
        self.kind: GuestErrorKind = kind
        self.code = kind
        self.detail = detail
        self.stderr_tail = stderr_tail
        self.subject = subject
