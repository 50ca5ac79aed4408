from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import trio
from wasmtime.component import Component, Linker

from runner_trio.capabilities import world_linker as build_linker
from runner_trio.engine import EngineConfig, Invocation, InvocationContext, WasmEngine
from tests.guests.wat import load_wat, wat_names


@pytest.fixture(scope="session")
def engine() -> WasmEngine:
    return WasmEngine()


@pytest.fixture(scope="session")
def linker(engine: WasmEngine) -> Linker:
    return build_linker(engine)


@pytest.fixture(scope="session")
def guests(engine: WasmEngine) -> dict[str, Component]:
    """Every WAT guest, compiled once."""
    return {name: engine.compile(load_wat(name)) for name in wat_names()}


@pytest.fixture(scope="session")
def observing_engine() -> WasmEngine:
    """An engine whose memories the runner allocates (a memory cap hit is observed by the host)."""
    return WasmEngine(EngineConfig(observe_memory=True))


@pytest.fixture(scope="session")
def observing_linker(observing_engine: WasmEngine) -> Linker:
    return build_linker(observing_engine)


@pytest.fixture(scope="session")
def observing_guests(observing_engine: WasmEngine) -> dict[str, Component]:
    return {name: observing_engine.compile(load_wat(name)) for name in ("grow", "spoof", "echo")}


@pytest.fixture
async def observing(observing_engine: WasmEngine, nursery: trio.Nursery) -> WasmEngine:
    """The observing engine with its epoch ticker running."""
    await nursery.start(observing_engine.run_ticker)
    return observing_engine


@pytest.fixture
async def ticking(engine: WasmEngine, nursery: trio.Nursery) -> WasmEngine:
    """The engine with its epoch ticker running for the duration of the test."""
    await nursery.start(engine.run_ticker)
    return engine


@dataclass
class Events:
    """A thread-safe event sink that records ``(level, stream, message)``."""

    items: list[tuple[str, str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, level: str, stream: str, message: str) -> None:
        with self._lock:
            self.items.append((level, stream, message))

    def on(self, stream: str) -> list[str]:
        with self._lock:
            return [message for _, s, message in self.items if s == stream]


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def make_invocation(events: Events) -> Callable[..., Invocation]:
    def make(**overrides: object) -> Invocation:
        context = overrides.pop(
            "context",
            InvocationContext(tenant_id="tenant-1", extension_id="ext-1", request_id="req-1"),
        )
        overrides.setdefault("events", events)
        return Invocation(context=context, **overrides)  # type: ignore[arg-type]

    return make
