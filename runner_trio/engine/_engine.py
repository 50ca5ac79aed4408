"""The process-wide wasmtime Engine: configuration, fingerprint, compile and (de)serialize, the epoch ticker."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, final

import trio
import wasmtime
from wasmtime.component import Component

from ._errors import ArtifactError, ComponentError, EngineConfigError, TickerError
from ._memory import install_memory_creator

__all__ = [
    "COMPONENT_HEADER",
    "DEFAULT_EPOCH_TICK",
    "DEFAULT_OPT_LEVEL",
    "EngineConfig",
    "WasmEngine",
]

DEFAULT_EPOCH_TICK: Final = 0.005
"""Seconds between epoch increments: a cancelled guest stops within about one tick."""

DEFAULT_TICKER_LINGER_S: Final = 120.0
"""How long a cancelled ticker keeps ticking for guest calls still running (longer than any deadline)."""

DEFAULT_OPT_LEVEL: Final = "speed"
OPT_LEVELS: Final = ("none", "speed", "speed_and_size")
MIN_WASM_STACK: Final = 64 * 1024
MAX_WASM_STACK: Final = 64 * 1024 * 1024

WASM_MAGIC: Final = b"\0asm"
COMPONENT_HEADER: Final = WASM_MAGIC + b"\x0d\x00\x01\x00"
"""Magic, then version 0x0d and layer 1: the binary encoding of a component (a core module has layer 0)."""
_CORE_MODULE_HEADER: Final = WASM_MAGIC + b"\x01\x00\x00\x00"

_FINGERPRINT_FORMAT: Final = 1
_UNSAFE_CHARS: Final = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The engine settings this runner exposes (epoch interruption is always on).

    Attributes:
        cranelift_opt_level: ``none``, ``speed`` or ``speed_and_size``.
        max_wasm_stack: bytes of native stack a guest may use; None keeps wasmtime's default.
        parallel_compilation: compile functions on several threads.
        observe_memory: allocate guest memories through the runner's memory creator (``_memory.py``), so
            that a memory cap hit is observed by the host (``memory_limit``) rather than only by the guest.
    """

    cranelift_opt_level: str = DEFAULT_OPT_LEVEL
    max_wasm_stack: int | None = None
    parallel_compilation: bool = True
    observe_memory: bool = False

    def validate(self) -> None:
        """Reject settings before wasmtime sees them: an invalid engine configuration aborts the process.

        Raises:
            EngineConfigError: naming the setting.
        """
        if self.cranelift_opt_level not in OPT_LEVELS:
            raise EngineConfigError(
                f"cranelift_opt_level must be one of {', '.join(OPT_LEVELS)}, not {self.cranelift_opt_level!r}"
            )
        stack = self.max_wasm_stack
        if stack is not None and (
            isinstance(stack, bool) or not isinstance(stack, int) or not MIN_WASM_STACK <= stack <= MAX_WASM_STACK
        ):
            raise EngineConfigError(
                f"max_wasm_stack must be an integer in [{MIN_WASM_STACK}, {MAX_WASM_STACK}], not {stack!r}"
            )
        if not isinstance(self.parallel_compilation, bool):
            raise EngineConfigError("parallel_compilation must be a bool")
        if not isinstance(self.observe_memory, bool):
            raise EngineConfigError("observe_memory must be a bool")

    def to_wasmtime(self) -> wasmtime.Config:
        """A fresh ``wasmtime.Config`` (validated first)."""
        self.validate()
        config = wasmtime.Config()
        config.epoch_interruption = True
        config.cranelift_opt_level = self.cranelift_opt_level
        config.parallel_compilation = self.parallel_compilation
        if self.max_wasm_stack is not None:
            config.max_wasm_stack = self.max_wasm_stack
        if self.observe_memory:
            install_memory_creator(config)
        return config


def _platform_tag() -> str:
    return _UNSAFE_CHARS.sub("_", f"{platform.machine().lower()}-{sys.platform}")


@final
class WasmEngine:
    """One per process: the wasmtime Engine with epoch interruption, and the identity of its compiled code.

    Attributes:
        config: the settings.
        version: the wasmtime-py version.
        platform: ``<machine>-<os>``, e.g. ``x86_64-linux``.
        fingerprint: hex sha256 of config, wasmtime version and platform: artifacts compiled under another
            fingerprint are not loadable here.
        target: file-name-safe ``wasmtime-<version>-<fingerprint[:16]>-<platform>`` for precompiled artifacts.
    """

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config if config is not None else EngineConfig()
        self._engine = wasmtime.Engine(self.config.to_wasmtime())
        self.version = importlib.metadata.version("wasmtime")
        self.platform = _platform_tag()
        identity = {
            "format": _FINGERPRINT_FORMAT,
            "wasmtime": self.version,
            "platform": self.platform,
            "epoch_interruption": True,
            "config": dataclasses.asdict(self.config),
        }
        self.fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        self.target = _UNSAFE_CHARS.sub("_", f"wasmtime-{self.version}-{self.fingerprint[:16]}-{self.platform}")
        self._tickers = 0
        self._calls = 0
        self._calls_lock = threading.Lock()
        self._wasip2_version: str | None = None

    @property
    def wasmtime(self) -> wasmtime.Engine:
        """The underlying ``wasmtime.Engine``."""
        return self._engine

    @property
    def ticking(self) -> bool:
        """Whether :meth:`run_ticker` is running (without it no guest can be interrupted)."""
        return self._tickers > 0

    @property
    def calls_in_flight(self) -> int:
        """Guest calls running on worker threads now (see :meth:`guest_call`)."""
        return self._calls

    @contextmanager
    def guest_call(self) -> Iterator[None]:
        """Count a guest call for as long as its worker thread runs it: the ticker outlives it (see
        :meth:`run_ticker`)."""
        with self._calls_lock:
            self._calls += 1
        try:
            yield
        finally:
            with self._calls_lock:
                self._calls -= 1

    @property
    def wasip2_version(self) -> str:
        """The ``0.2.x`` version under which wasmtime's WASI implementation is linked (probed once)."""
        if self._wasip2_version is None:
            from ._wasi import detect_wasip2_version

            self._wasip2_version = detect_wasip2_version(self._engine)
        return self._wasip2_version

    def compile(self, data: bytes | bytearray | memoryview) -> Component:
        """Compile a component from its binary encoding (seconds for a large guest: call it in a thread).

        Raises:
            ComponentError: not the binary encoding of a component (text format is refused: wasmtime-py
                would parse anything not starting with ``\\0asm`` as WAT), or compilation failed.
        """
        binary = bytes(data)
        header = binary[: len(COMPONENT_HEADER)]
        if header[: len(WASM_MAGIC)] != WASM_MAGIC:
            raise ComponentError("not a WebAssembly binary (missing \\0asm magic)")
        if header == _CORE_MODULE_HEADER:
            raise ComponentError("a core WebAssembly module, not a component")
        if header != COMPONENT_HEADER:
            raise ComponentError(f"unsupported component encoding (header {header.hex()})")
        try:
            return Component(self._engine, binary)
        except wasmtime.WasmtimeError as exc:
            raise ComponentError(f"component failed to compile: {_first_line(exc)}") from exc

    def serialize(self, component: Component) -> bytes:
        """The component's compiled code, loadable by :meth:`deserialize_file` of an engine with this target."""
        return bytes(component.serialize())

    def deserialize(self, data: bytes) -> Component:
        """Load compiled code from memory. Only for bytes this runner wrote (it is native code).

        Raises:
            ArtifactError: not loadable by this engine (treat as a cache miss).
        """
        try:
            return Component.deserialize(self._engine, bytes(data))
        except (wasmtime.WasmtimeError, TypeError) as exc:
            raise ArtifactError(f"precompiled component not loadable: {_first_line(exc)}") from exc

    def deserialize_file(self, path: str | os.PathLike[str]) -> Component:
        """Load (memory-map) compiled code from a file. Only for files this runner wrote.

        Raises:
            ArtifactError: missing, damaged, or built under another wasmtime version or configuration.
        """
        try:
            return Component.deserialize_file(self._engine, os.fspath(path))
        except (wasmtime.WasmtimeError, OSError, ValueError) as exc:
            raise ArtifactError(f"precompiled component not loadable: {_first_line(exc)}") from exc

    def increment_epoch(self) -> None:
        """Advance the epoch by one (what the ticker does)."""
        self._engine.increment_epoch()

    async def run_ticker(
        self,
        *,
        interval: float = DEFAULT_EPOCH_TICK,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The one task that advances the epoch every ``interval`` seconds; runs until cancelled.

        Raises:
            TickerError: a ticker is already running for this engine.
        """
        if not interval > 0:
            raise ValueError("interval must be positive")
        if self._tickers:
            raise TickerError("an epoch ticker is already running for this engine")
        self._tickers += 1
        try:
            task_status.started()
            while True:
                await trio.sleep(interval)
                self._engine.increment_epoch()
        finally:
            # Cancelled (shutdown) while guests still run on worker threads: they stop only at an epoch tick
            # (their awaiting tasks are being cancelled too, or their deadlines pass), so keep ticking until
            # the last one has returned, or for DEFAULT_TICKER_LINGER_S at most.
            with trio.CancelScope(shield=True), trio.move_on_after(DEFAULT_TICKER_LINGER_S):
                while self._calls:
                    await trio.sleep(interval)
                    self._engine.increment_epoch()
            self._tickers -= 1


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
