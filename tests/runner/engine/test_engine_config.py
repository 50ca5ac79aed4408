"""WasmEngine: configuration checks, identity, compile/serialize, the ticker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio
import wasmtime
from wasmtime.component import Component, Linker

from runner_trio.engine import (
    COMPONENT_HEADER,
    ArtifactError,
    ComponentError,
    EngineConfig,
    EngineConfigError,
    GuestRequest,
    TickerError,
    WasmEngine,
    invoke,
)
from tests.guests.wat import load_wat


@pytest.mark.parametrize(
    ("config", "setting"),
    [
        (EngineConfig(cranelift_opt_level="fastest"), "cranelift_opt_level"),
        (EngineConfig(max_wasm_stack=1024), "max_wasm_stack"),
        (EngineConfig(max_wasm_stack=1 << 40), "max_wasm_stack"),
        (EngineConfig(parallel_compilation="yes"), "parallel_compilation"),  # type: ignore[arg-type]
    ],
)
def test_invalid_config_is_rejected_before_wasmtime(config: EngineConfig, setting: str) -> None:
    with pytest.raises(EngineConfigError, match=setting):
        WasmEngine(config)


def test_fingerprint_is_stable_and_follows_the_config(engine: WasmEngine) -> None:
    same = WasmEngine()
    other = WasmEngine(EngineConfig(cranelift_opt_level="none"))
    assert same.fingerprint == engine.fingerprint
    assert other.fingerprint != engine.fingerprint
    assert re.fullmatch(r"[0-9a-f]{64}", engine.fingerprint)
    assert engine.target == f"wasmtime-{engine.version}-{engine.fingerprint[:16]}-{engine.platform}"
    assert re.fullmatch(r"[A-Za-z0-9._-]+", engine.target)
    assert re.fullmatch(r"0\.2\.\d+", engine.wasip2_version)


def test_compile_refuses_text_core_modules_and_garbage(engine: WasmEngine) -> None:
    with pytest.raises(ComponentError, match="magic"):
        engine.compile(b"(component)")
    with pytest.raises(ComponentError, match="core WebAssembly module"):
        engine.compile(bytes(wasmtime.wat2wasm("(module)")))
    with pytest.raises(ComponentError, match="encoding"):
        engine.compile(b"\0asm\x0e\x00\x01\x00")
    with pytest.raises(ComponentError, match="failed to compile"):
        engine.compile(COMPONENT_HEADER + b"\xff\xff\xff")


def test_artifact_round_trip_and_unusable_artifacts(engine: WasmEngine, tmp_path: Path) -> None:
    component = engine.compile(load_wat("echo"))
    artifact = tmp_path / f"{engine.target}.cwasm"
    artifact.write_bytes(engine.serialize(component))
    loaded = engine.deserialize_file(artifact)
    assert isinstance(loaded, Component)
    assert engine.deserialize(artifact.read_bytes()) is not None

    with pytest.raises(ArtifactError):
        engine.deserialize_file(tmp_path / "missing.cwasm")
    damaged = tmp_path / "damaged.cwasm"
    damaged.write_bytes(artifact.read_bytes()[:1000])
    with pytest.raises(ArtifactError):
        engine.deserialize_file(damaged)
    # Compiled by an engine without epoch interruption: wasmtime refuses it, the cache must recompile.
    plain = wasmtime.Engine()
    foreign = tmp_path / "foreign.cwasm"
    foreign.write_bytes(bytes(Component(plain, load_wat("echo")).serialize()))
    with pytest.raises(ArtifactError, match="not loadable"):
        engine.deserialize_file(foreign)


async def test_invoke_needs_the_ticker_and_there_is_only_one(
    engine: WasmEngine, linker: Linker, guests: dict[str, Component], make_invocation: object
) -> None:
    request = GuestRequest("GET", "/")
    invocation = make_invocation()  # type: ignore[operator]
    with pytest.raises(TickerError, match="not running"):
        await invoke(engine, linker, guests["echo"], request, invocation, timeout=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run_ticker)
        assert engine.ticking
        with pytest.raises(TickerError, match="already running"):
            await engine.run_ticker()
        response = await invoke(engine, linker, guests["echo"], request, invocation, timeout=1)
        assert response.status == 200
        nursery.cancel_scope.cancel()
    assert not engine.ticking
