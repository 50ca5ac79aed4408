"""ArtifactCache with real wasmtime components: build once, load precompiled, reject foreign or tampered bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import wasmtime
from wasmtime.component import Component

from bundles import ObjectExists, ObjectNotFound
from bundles.store import FileStore
from cache import (
    ArtifactCache,
    ArtifactRejected,
    DiskCache,
    InvalidKey,
    SharedArtifacts,
    default_remote_key,
    open_artifact,
    seal_artifact,
)
from tests.cache.cache_testkit import Source

CHILD = Path(__file__).with_name("artifact_child.py")
PROJECT = Path(__file__).resolve().parents[2]
KEY = b"k" * 32
TARGET = "wasmtime-50.0.1.cfg-0123abcd.x86_64-linux"


@pytest.fixture(scope="session")
def component_bytes() -> bytes:
    return bytes(wasmtime.wat2wasm('(component (core module (func (export "f"))))'))


@pytest.fixture(scope="session")
def engine() -> wasmtime.Engine:
    return wasmtime.Engine()


def engine_with(**settings: bool) -> wasmtime.Engine:
    config = wasmtime.Config()
    for name, value in settings.items():
        setattr(config, name, value)
    return wasmtime.Engine(config)


class Runner:
    """What the runner does around the cache: build = fetch the entry + compile; counts what happened."""

    def __init__(
        self, disk: DiskCache, engine: wasmtime.Engine, src: Source, shared: SharedArtifacts | None = None
    ) -> None:
        self.disk = disk
        self.engine = engine
        self.src = src
        self.artifacts: ArtifactCache[Component] = ArtifactCache(disk, shared=shared)
        self.built = 0
        self.deserialized: list[Path] = []

    async def build(self) -> Component:
        self.built += 1
        async with self.disk.entry(self.src.hex, self.src.fill) as entry:
            data = await entry.open_verified("entry.wasm")
        return await trio.to_thread.run_sync(Component, self.engine, data)

    def deserialize_file(self, path: Path) -> Component:
        self.deserialized.append(path)
        return Component.deserialize_file(self.engine, str(path))

    async def component(self, target: str = TARGET) -> Component:
        return await self.artifacts.load_or_build(
            self.src.hex,
            target,
            build=self.build,
            serialize=lambda c: c.serialize(),
            deserialize_file=self.deserialize_file,
        )


@pytest.fixture
def wasm_source(component_bytes: bytes) -> Source:
    return Source({"entry.wasm": component_bytes}, tag="component")


def shared_store(store_root: Path, key: bytes = KEY) -> SharedArtifacts:
    return SharedArtifacts(
        FileStore(store_root), key=key, not_found=ObjectNotFound, already_exists=ObjectExists
    )


async def test_fifty_concurrent_misses_one_fetch_one_build(
    cache_root: Path, engine: wasmtime.Engine, wasm_source: Source
) -> None:
    async with DiskCache(cache_root) as disk:
        runner = Runner(disk, engine, wasm_source)
        got: list[Component] = []

        async def request() -> None:
            got.append(await runner.component())

        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(request)
        assert len(got) == 50
        assert all(c is got[0] for c in got)
        assert await runner.component() is got[0]
        stats = runner.artifacts.statistics()
        assert (runner.built, wasm_source.fills) == (1, 1)
        assert (stats.builds, stats.fills, stats.memory_hits, stats.precompiled_loads) == (1, 1, 1, 0)
        async with disk.lookup(wasm_source.hex) as entry:
            assert entry is not None
            assert entry.has(f"precompiled/{TARGET}.cwasm")
            artifact = await entry.open_verified(f"precompiled/{TARGET}.cwasm")
        assert artifact == bytes(got[0].serialize())

        # Another ArtifactCache on the same disk (as after a restart) loads the file it wrote.
        again = Runner(disk, engine, wasm_source)
        await again.component()
        assert (again.built, len(again.deserialized)) == (0, 1)
        assert again.artifacts.statistics().precompiled_loads == 1


async def test_a_restarted_process_loads_the_artifact_without_compiling(
    cache_root: Path, engine: wasmtime.Engine, wasm_source: Source
) -> None:
    async with DiskCache(cache_root) as disk:
        await Runner(disk, engine, wasm_source).component()

    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    done = await trio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, str(CHILD), str(cache_root), wasm_source.hex, TARGET],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["type"] == "Component"
    assert report["compiled"] == 0
    stats = report["stats"]
    assert (stats["builds"], stats["precompiled_loads"], stats["fills"], stats["stale_artifacts"]) == (0, 1, 0, 0)


@pytest.mark.parametrize("settings", [{"epoch_interruption": True}, {"consume_fuel": True}])
async def test_artifact_of_another_engine_config_is_rejected_and_rebuilt(
    cache_root: Path, engine: wasmtime.Engine, wasm_source: Source, settings: dict[str, bool]
) -> None:
    other = engine_with(**settings)
    relpath = f"precompiled/{TARGET}.cwasm"
    async with DiskCache(cache_root) as disk:
        # Same target string on purpose: as if a config change had not changed the fingerprint.
        await Runner(disk, engine, wasm_source).component()
        async with disk.lookup(wasm_source.hex) as entry:
            assert entry is not None
            before = entry.files[relpath].sha256

        changed = Runner(disk, other, wasm_source)
        component = await changed.component()
        assert len(changed.deserialized) == 1  # tried, failed cleanly
        assert changed.built == 1
        stats = changed.artifacts.statistics()
        assert (stats.stale_artifacts, stats.builds, stats.precompiled_loads) == (1, 1, 0)
        # The rebuilt artifact replaced the stale one and works with the new engine.
        async with disk.lookup(wasm_source.hex) as entry:
            assert entry is not None
            assert entry.files[relpath].sha256 != before
            assert bytes(component.serialize()) == await entry.open_verified(relpath)
        fresh = Runner(disk, other, wasm_source)
        await fresh.component()
        assert (fresh.built, fresh.artifacts.statistics().precompiled_loads) == (0, 1)


async def test_shared_artifact_is_loaded_by_another_runner_without_compiling(
    tmp_path: Path, engine: wasmtime.Engine, wasm_source: Source
) -> None:
    store = tmp_path / "store"
    async with DiskCache(tmp_path / "a") as disk_a:
        first = Runner(disk_a, engine, wasm_source, shared_store(store))
        built = await first.component()
    key = default_remote_key(wasm_source.hex, TARGET)
    assert (store / key).is_file()

    async with DiskCache(tmp_path / "b") as disk_b:
        async with disk_b.entry(wasm_source.hex, wasm_source.fill):
            pass  # runner b has fetched the bundle (and verified its signature), not compiled it
        second = Runner(disk_b, engine, wasm_source, shared_store(store))
        await second.component()
        assert second.built == 0
        assert second.deserialized == [tmp_path / "b" / wasm_source.hex / f"precompiled/{TARGET}.cwasm"]
        assert second.deserialized[0].read_bytes() == bytes(built.serialize())
        stats = second.artifacts.statistics()
        assert (stats.shared_loads, stats.precompiled_loads, stats.rejected_artifacts) == (1, 1, 0)

    # Without any local entry, a shared artifact is still usable (from a scratch file).
    async with DiskCache(tmp_path / "c") as disk_c:
        third = Runner(disk_c, engine, wasm_source, shared_store(store))
        await third.component()
        assert (third.built, len(third.deserialized), wasm_source.fills) == (0, 1, 2)


def tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("attack", ["flipped-payload-bit", "other-key"])
async def test_unauthenticated_shared_artifact_is_never_deserialized(
    tmp_path: Path, engine: wasmtime.Engine, wasm_source: Source, attack: str
) -> None:
    store = tmp_path / "store"
    async with DiskCache(tmp_path / "a") as disk_a:
        await Runner(disk_a, engine, wasm_source, shared_store(store)).component()
    reader_key = KEY
    if attack == "flipped-payload-bit":
        tamper(store / default_remote_key(wasm_source.hex, TARGET))
    else:
        reader_key = b"another runner fleet's key!!!!!!"

    async with DiskCache(tmp_path / "b") as disk_b:
        victim = Runner(disk_b, engine, wasm_source, shared_store(store, reader_key))
        await victim.component()
        assert victim.deserialized == []
        assert victim.built == 1
        stats = victim.artifacts.statistics()
        assert (stats.rejected_artifacts, stats.shared_loads, stats.builds) == (1, 0, 1)


async def test_unreachable_shared_store_degrades_to_a_local_build(
    tmp_path: Path, engine: wasmtime.Engine, wasm_source: Source
) -> None:
    broken = FileStore(tmp_path / "store")
    await broken.aclose()  # every call now fails with a StoreError
    shared = SharedArtifacts(broken, key=KEY, not_found=ObjectNotFound)
    async with DiskCache(tmp_path / "a") as disk:
        runner = Runner(disk, engine, wasm_source, shared)
        await runner.component()
        stats = runner.artifacts.statistics()
    assert runner.built == 1
    assert stats.shared_errors == 2  # the read and the write


def test_sealed_artifacts_open_only_for_their_hash_target_and_key() -> None:
    hex_a, hex_b = "a" * 64, "b" * 64
    sealed = seal_artifact(KEY, hex_a, TARGET, b"native code")
    assert bytes(open_artifact(KEY, hex_a, TARGET, sealed)) == b"native code"
    cases: list[tuple[bytes, str, str, Any]] = [
        (KEY, hex_b, TARGET, "another content hash"),
        (KEY, hex_a, "other-target", "another target"),
        (b"x" * 32, hex_a, TARGET, "does not verify"),
    ]
    for key, hex_digest, target, message in cases:
        with pytest.raises(ArtifactRejected, match=message):
            open_artifact(key, hex_digest, target, sealed)
    # Rewriting the header to claim another hash does not help: the tag covers the hash asked for.
    forged = sealed.replace(bytes.fromhex(hex_a), bytes.fromhex(hex_b), 1)
    with pytest.raises(ArtifactRejected, match="does not verify"):
        open_artifact(KEY, hex_b, TARGET, forged)
    for broken in (b"", sealed[:20], b"NOTCWASM" + sealed[8:]):
        with pytest.raises(ArtifactRejected):
            open_artifact(KEY, hex_a, TARGET, broken)


def test_short_precompile_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        SharedArtifacts(FileStore(tmp_path), key=b"short", not_found=ObjectNotFound)


async def test_targets_are_validated(cache_root: Path, engine: wasmtime.Engine, wasm_source: Source) -> None:
    async with DiskCache(cache_root) as disk:
        runner = Runner(disk, engine, wasm_source)
        for bad in ("../x", "a/b", "", ".hidden", "sp ace", "x" * 201):
            with pytest.raises(InvalidKey):
                await runner.component(bad)
        assert runner.built == 0

