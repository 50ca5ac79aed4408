"""Keyed requests across real runners: a retry on another runner, or after a restart, replays the first result.

Guest runs are counted by each runner's ``runner_invocations_total``: a replay runs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from runner_trio import Settings
from tests._redis import RedisServer, running_redis
from tests.runner.http.conftest import RunnerHandle, Shared, start_runner


async def _metric(runner: RunnerHandle, name: str) -> float:
    text = (await runner.client.get("/metrics")).text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def _guest_runs(runner: RunnerHandle) -> float:
    return await _metric(runner, 'runner_invocations_total{outcome="ok"}')


async def _stop(runner: RunnerHandle) -> None:
    await runner.client.aclose()
    runner.shutdown.set()


async def _keyed(runner: RunnerHandle, digest: str, key: str, body: bytes = b"order") -> dict[str, object]:
    return await runner.execute(digest, "/orders", method="POST", body=body, headers={"x-idempotency-key": key},
                                extra={"context": {"tenant_id": "tenant-a", "extension_id": "ext-1",
                                                   "content_hash": digest, "request_id": f"req-{runner.url}"}})


def _without_usage(answer: dict[str, object]) -> dict[str, object]:
    """A first run's answer as its replay shows it: ``usage`` is billed once, with the run."""
    assert "usage" in answer
    return {name: value for name, value in answer.items() if name != "usage"}


@pytest.mark.parametrize("store", ["sqlite", "redis", "postgresql"])
async def test_a_retry_on_another_runner_replays(
    store: str, nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared, tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    if store == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        url = server.url
    elif store == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite://{tmp_path / 'shared' / 'idempotency.sqlite3'}"
    first = await start_runner(nursery, runner_settings(var_dir=tmp_path / "a", idempotency_url=url), shared)
    second = await start_runner(nursery, runner_settings(var_dir=tmp_path / "b", idempotency_url=url), shared)
    digest = await first.publish_wat("echo")
    key = f"order-{store}-{tmp_path.name}"

    answer = await _keyed(first, digest, key)
    assert (answer["status"], answer["error"]) == (200, None)
    replay = await _keyed(second, digest, key)  # another request id, the same request: a retry
    assert replay == _without_usage(answer), "the same answer; its usage was the first run's, not the replay's"
    assert (await _guest_runs(first), await _guest_runs(second)) == (1.0, 0.0)
    assert await _metric(second, "runner_idempotent_replays_total") == 1.0

    reused = await _keyed(second, digest, key, body=b"another order")
    assert (reused["status"], reused["error"]) == (409, "idempotency_key_reused")
    assert await _guest_runs(second) == 0.0
    await _stop(first)
    await _stop(second)


async def test_a_restarted_runner_replays(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared, tmp_path: Path
) -> None:
    settings = runner_settings(var_dir=tmp_path / "var")  # the default store: <var>/idempotency.sqlite3
    before = await start_runner(nursery, settings, shared)
    digest = await before.publish_wat("echo")
    answer = await _keyed(before, digest, "order-restart")
    await _stop(before)
    await trio.sleep(0.2)

    after = await start_runner(nursery, settings, shared)
    assert await _keyed(after, digest, "order-restart") == _without_usage(answer)
    assert await _guest_runs(after) == 0.0
    assert (settings.var_dir / "idempotency.sqlite3").exists()
    await _stop(after)


async def test_redis_down_refuses_keyed_requests_and_they_resume(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared, tmp_path: Path
) -> None:
    with running_redis() as server:
        runner = await start_runner(nursery, runner_settings(idempotency_url=server.url), shared)
        digest = await runner.publish_wat("echo")
        server.stop()
        down = await _keyed(runner, digest, "order-down")
        assert down["status"] == 503
        assert str(down["error"]).startswith("idempotency_store_unavailable: redis://127.0.0.1:")
        assert await _guest_runs(runner) == 0.0, "no claim, no guest"
        unkeyed = await runner.execute(digest)  # requests without a key do not need the store
        assert unkeyed["status"] == 200

        server.start()
        back = await _keyed(runner, digest, "order-down")
        assert (back["status"], back["error"]) == (200, None)
        assert await _keyed(runner, digest, "order-down") == _without_usage(back)
        assert await _guest_runs(runner) == 2.0  # the unkeyed one and the first keyed one that got its claim
        await _stop(runner)
