"""Warm-up at start (RUNNER_WARMUP_HASHES): /readyz waits for the listed bundles; a replica sharing the store's
precompiled artifacts (RUNNER_PRECOMPILE_KEY) warms without compiling."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from runner_trio import Settings
from runner_trio._warmup import WarmUp

from .conftest import RunnerHandle, Shared, start_runner

MISSING = "sha256:" + "0" * 64
PRECOMPILE_KEY = "warmup-test-precompile-key-0123456789abcdef"


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, flags=re.M)
    assert match, name
    return float(match.group(1))


async def _wait_ready(runner: RunnerHandle) -> dict[str, object]:
    with trio.fail_after(90):
        while True:
            response = await runner.client.get("/readyz")
            if response.status_code == 200:
                return dict(response.json())
            assert "warmup" in response.json()["problems"], response.text
            await trio.sleep(0.05)


async def _figures(runner: RunnerHandle) -> dict[str, float]:
    text = (await runner.client.get("/metrics")).text
    return {name: _metric(text, f"runner_{name}_total")
            for name in ("bundle_fetches", "component_compiles", "precompiled_loads")}


async def test_a_listed_bundle_is_warm_before_ready_and_a_second_replica_loads_the_shared_artifact(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared, tmp_path: Path,
) -> None:
    publisher = await start_runner(nursery, runner_settings(cache_root=tmp_path / "cache-p"), shared)
    digest = await publisher.publish_wat("echo")
    publisher.shutdown.set()

    first = await start_runner(nursery, runner_settings(
        cache_root=tmp_path / "cache-a", var_dir=tmp_path / "var-a", precompile_key=PRECOMPILE_KEY,
        warmup_hashes=(digest.removeprefix("sha256:"), MISSING.removeprefix("sha256:"))), shared)
    assert await _wait_ready(first) == {"status": "ready"}  # the missing bundle does not hold readiness back
    warm = await _figures(first)
    assert warm["bundle_fetches"] == 2  # echo, and the attempt at the missing one
    assert warm["component_compiles"] == 1
    await first.execute(digest)
    assert await _figures(first) == warm  # the first request neither fetched nor compiled

    second = await start_runner(nursery, runner_settings(
        cache_root=tmp_path / "cache-b", var_dir=tmp_path / "var-b", precompile_key=PRECOMPILE_KEY,
        warmup_hashes=(digest.removeprefix("sha256:"),)), shared)
    await _wait_ready(second)
    figures = await _figures(second)
    assert figures["component_compiles"] == 0
    assert figures["precompiled_loads"] >= 1  # the artifact the first replica shared through the store
    for runner in (first, second):
        await runner.client.aclose()
        runner.shutdown.set()


async def test_readiness_waits_for_every_listed_bundle_then_for_nothing_past_the_timeout() -> None:
    gates = {"a": trio.Event(), "b": trio.Event()}

    async def warm(hex_digest: str) -> None:
        await gates[hex_digest].wait()

    warmup = WarmUp(("a", "b"), warm)
    async with trio.open_nursery() as nursery:
        await nursery.start(warmup.run)
        assert (warmup.ready, warmup.pending) == (False, 2)
        gates["a"].set()
        await trio.testing.wait_all_tasks_blocked()
        assert (warmup.ready, warmup.pending) == (False, 1)
        gates["b"].set()
    assert warmup.ready
    assert warmup.warmed == ["a", "b"]

    async def never(_hex_digest: str) -> None:
        await trio.sleep_forever()

    stuck = WarmUp(("a",), never, timeout_s=0.05)
    await stuck.run()
    assert stuck.ready
    assert stuck.timed_out


def test_the_setting_takes_content_hashes_only() -> None:
    hex_digest = "ab" * 32
    settings = Settings.from_env({"RUNNER_WARMUP_HASHES": f"sha256:{hex_digest}, {hex_digest}"})
    assert settings.warmup_hashes == (hex_digest,)
    with pytest.raises(Exception, match="RUNNER_WARMUP_HASHES"):
        Settings.from_env({"RUNNER_WARMUP_HASHES": "latest"})
