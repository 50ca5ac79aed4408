"""Faults with real parts: the cache disk full (a 20 MiB tmpfs) and the bundle store down (moto stopped, a file
store gone). The runner keeps its JSON contract through both: cached bundles run, misses fail fast and in-band
with ``bundle_fetch_failed``, ``/readyz`` tells the balancer, nothing partial is left on disk.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

import runner_trio._bundles as runner_bundles
from bundles import pack_directory, publish_bundle
from bundles.store import open_store
from runner_trio import Settings
from tests._moto import MotoCredentials, MotoServer, create_bucket
from tests.cache.small_fs import MIB, drop_ballast, leave_free, small_filesystem
from tests.guests.wat import load_wat

from .conftest import RunnerHandle, Shared, bundle_dir, decode_body, start_runner

FS_SIZE = 20 * MIB
MIN_FREE = 2 * MIB
TIMEOUT_MS = 10_000


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not exported"
    return float(found.group(1))


def blob_bundle(work: Path, name: str, blob_bytes: int) -> Path:
    """The echo guest with a UI that carries ``blob_bytes`` of incompressible data (to fill a disk with)."""
    src = bundle_dir(work, name, load_wat("echo"), ui={"index.html": f"<p>{name}</p>"})
    (src / "ui" / "blob.bin").write_bytes(os.urandom(blob_bytes))
    return src


async def publish(settings: Settings, src: Path) -> str:
    """Pack (zstd level 1: the default level takes seconds on incompressible megabytes) and publish ``src``."""
    data = await trio.to_thread.run_sync(lambda: pack_directory(src, level=1))
    store = open_store(settings.resolved_store_base, env=settings.store_env)
    try:
        return await publish_bundle(store, data)
    finally:
        await store.aclose()


def cache_listing(root: Path) -> tuple[list[str], list[str]]:
    """(entries, scratch leftovers): what the cache root holds besides its scratch locks."""
    entries = sorted(name for name in os.listdir(root) if name not in {".tmp", ".locks"})
    leftovers = sorted(
        os.path.relpath(os.path.join(dirpath, name), root)
        for dirpath, dirnames, filenames in os.walk(root / ".tmp")
        for name in filenames + dirnames
        if Path(dirpath) != root / ".tmp"
    )
    return entries, leftovers


async def ready(runner: RunnerHandle) -> tuple[int, dict[str, Any]]:
    response = await runner.client.get("/readyz")
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def test_cache_disk_full(
    runner_settings: Callable[..., Settings], shared: Shared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Count store fetches per bundle: the write retried after eviction must not fetch the bundle again.
    fetched: list[str] = []
    real_fetch = runner_bundles.fetch_bundle

    async def counting_fetch(store: Any, content_hash: str, **kwargs: Any) -> Any:
        fetched.append(content_hash)
        return await real_fetch(store, content_hash, **kwargs)

    monkeypatch.setattr(runner_bundles, "fetch_bundle", counting_fetch)
    with small_filesystem(tmp_path / "small", FS_SIZE) as fs:
        root = fs / "cache"
        settings = runner_settings(cache_root=root, cache_min_free_bytes=MIN_FREE)
        async with trio.open_nursery() as nursery:
            runner = await start_runner(nursery, settings, shared)
            try:
                await _disk_full_scenario(runner, root, fs, tmp_path, fetched)
            finally:
                await runner.client.aclose()
                runner.shutdown.set()
        # The runner has stopped (its scratch lock released) before the filesystem is unmounted.


async def _disk_full_scenario(runner: RunnerHandle, root: Path, fs: Path, work: Path, fetched: list[str]) -> None:
    old = await publish(runner.settings, blob_bundle(work, "disk-old", 5 * MIB))
    new = await publish(runner.settings, blob_bundle(work, "disk-new", 6 * MIB))
    huge = await publish(runner.settings, blob_bundle(work, "disk-huge", 12 * MIB))
    limits = {"timeout_ms": TIMEOUT_MS}

    result = await runner.execute(old, "/", method="POST", body=b"old", limits=limits)
    assert (result["status"], decode_body(result)) == (200, b"old")
    assert await ready(runner) == (200, {"status": "ready"})

    # 3 MiB free: still ready (above EXT_CACHE_MIN_FREE_BYTES), but a 6 MiB bundle does not fit until the
    # older, unused entry goes.
    leave_free(fs, 3 * MIB)
    assert (await ready(runner))[0] == 200
    result = await runner.execute(new, "/", method="POST", body=b"new", limits=limits)
    assert (result["status"], result["error"], decode_body(result)) == (200, None, b"new")
    entries, leftovers = cache_listing(root)
    assert entries == [new.removeprefix("sha256:")], "the older entry was evicted to make room"
    assert fetched.count(new.removeprefix("sha256:")) == 1, "written twice, fetched once"
    assert leftovers == []
    metrics = (await runner.client.get("/metrics")).text
    assert metric(metrics, "runner_cache_disk_full_total") >= 1
    assert metric(metrics, "runner_cache_evictions_total") >= 1

    # Below the floor: not ready, with the reason.
    leave_free(fs, 1 * MIB)
    status, body = await ready(runner)
    assert status == 503
    assert body["status"] == "unavailable"
    assert "EXT_CACHE_MIN_FREE_BYTES" in body["problems"]["cache_free_space"]

    # A bundle that does not fit even after evicting everything unused: in-band bundle_fetch_failed, fast.
    started = trio.current_time()
    result = await runner.execute(huge, "/", limits=limits)
    assert trio.current_time() - started < TIMEOUT_MS / 1000 / 2
    assert result["status"] == 502
    assert result["error"].startswith("bundle_fetch_failed: cache disk full: "), result["error"]
    assert result["body_b64"] is None
    entries, leftovers = cache_listing(root)
    assert entries == [], "the unused entry was evicted trying; the huge one left nothing behind"
    assert leftovers == []

    # The other routes that fill the cache answer JSON too.
    response = await runner.client.post("/v1/warmup", json={"content_hash": huge})
    assert (response.status_code, response.headers["content-type"]) == (502, "application/json")
    assert response.json()["error"].startswith("bundle_fetch_failed: cache disk full: ")
    response = await runner.client.get(f"/ext-ui/ext-1/{huge}/index.html")
    assert (response.status_code, response.headers["content-type"]) == (502, "application/json")
    assert response.json()["code"] == "bundle_fetch_failed"
    assert cache_listing(root) == ([], [])

    # Room again: ready, and the same bundle runs.
    drop_ballast(fs)
    assert await ready(runner) == (200, {"status": "ready"})
    result = await runner.execute(huge, "/", method="POST", body=b"huge", limits=limits)
    assert (result["status"], decode_body(result)) == (200, b"huge")


# -- the bundle store down --------------------------------------------------------------------------------


async def _store_down_scenario(
    runner: RunnerHandle, cached: str, missing: str, stop_store: Callable[[], None], *, ready_after: bool
) -> None:
    limits = {"timeout_ms": TIMEOUT_MS}
    result = await runner.execute(cached, "/", method="POST", body=b"warm", limits=limits)
    assert (result["status"], decode_body(result)) == (200, b"warm")

    await trio.to_thread.run_sync(stop_store)

    result = await runner.execute(cached, "/", method="POST", body=b"still", limits=limits)
    assert (result["status"], result["error"], decode_body(result)) == (200, None, b"still")
    started = trio.current_time()
    result = await runner.execute(missing, "/", limits=limits)
    elapsed = trio.current_time() - started
    assert result["status"] == 502
    assert result["error"].startswith("bundle_fetch_failed"), result["error"]
    assert elapsed < 3, f"a miss with the store down took {elapsed:.1f}s (timeout {TIMEOUT_MS} ms)"
    status, body = await ready(runner)
    if ready_after:
        assert status == 200
    else:
        assert status == 503
        assert "store" in body["problems"]
    # Still serving what it has.
    result = await runner.execute(cached, "/", method="POST", body=b"again", limits=limits)
    assert (result["status"], decode_body(result)) == (200, b"again")


async def test_s3_bundle_store_down(runner_settings: Callable[..., Settings], shared: Shared, tmp_path: Path) -> None:
    moto = MotoServer()
    url = await trio.to_thread.run_sync(moto.start)
    try:
        await trio.to_thread.run_sync(
            lambda: create_bucket(url, "runner-faults", credentials=MotoCredentials("test", "test"))
        )
        env = {
            "STORAGE_S3_ENDPOINT": url,
            "STORAGE_S3_ACCESS_KEY": "test",
            "STORAGE_S3_SECRET_KEY": "test",
            "STORAGE_S3_REGION": "us-east-1",
            "STORAGE_S3_FORCE_PATH_STYLE": "true",
        }
        base = "s3://runner-faults/bundles"
        settings = runner_settings(bundle_store_base=base, store_env=env, cache_root=tmp_path / "cache")
        cached = await publish(settings, blob_bundle(tmp_path, "s3-cached", 1024))
        missing = await publish(settings, blob_bundle(tmp_path, "s3-missing", 1024))
        async with trio.open_nursery() as nursery:
            runner = await start_runner(nursery, settings, shared)
            try:
                await _store_down_scenario(runner, cached, missing, moto.stop, ready_after=False)
            finally:
                await runner.client.aclose()
                runner.shutdown.set()
    finally:
        moto.stop()


async def test_file_bundle_store_gone(runner_settings: Callable[..., Settings], shared: Shared, tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    settings = runner_settings(bundle_store_base=store_dir.resolve().as_uri(), cache_root=tmp_path / "cache")
    async with trio.open_nursery() as nursery:
        runner = await start_runner(nursery, settings, shared)
        try:
            cached = await publish(settings, blob_bundle(tmp_path, "file-cached", 1024))
            missing = await publish(settings, blob_bundle(tmp_path, "file-missing", 1024))
            # The file store recreates its (now empty) root on the readiness ping: ready, and every miss is a
            # bundle_fetch_failed naming the missing object.
            await _store_down_scenario(runner, cached, missing, lambda: shutil.rmtree(store_dir), ready_after=True)
        finally:
            await runner.client.aclose()
            runner.shutdown.set()

