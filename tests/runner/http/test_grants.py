"""The runner grants ``providers ∩ manifest capabilities`` (plus the always-granted), whatever the caller lists,
and tells the extension's debug stream what it refused: ``caps.wat`` (every host function once) over HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import trio

from runner_trio import Settings
from tests._redis import RedisServer, redis_server  # noqa: F401 - the fixture
from tests.guests.wat import load_wat
from tests.runner.debug_events._helpers import entries

from .conftest import RunnerHandle, Shared, bundle_dir, start_runner

STORAGE_MISSING = "err:0"  # storage-error: missing, conflict, denied, internal
STORAGE_DENIED = "err:2"
SECRET_DENIED = "err:1"  # secret-error: missing, denied, expired, internal
ENVELOPE = {"secret_envelope": {
    "algorithm": "inline/base64", "ciphertext_b64": base64.b64encode(json.dumps({"api-key": "k-1"}).encode()).decode(),
}}


async def _publish_caps(runner: RunnerHandle, name: str, capabilities: list[str]) -> str:
    return await runner.publish_dir(bundle_dir(runner.shared.work, name, load_wat("caps"), capabilities=capabilities))


async def _run(runner: RunnerHandle, digest: str, providers: list[str]) -> dict[str, Any]:
    result = await runner.execute(digest, tenant="grants-t", extension="grants-e", providers=providers, extra=ENVELOPE)
    assert result["status"] == 200, result
    headers: dict[str, Any] = result["headers"]
    assert headers["context.tenant-id"] == "grants-t"  # always granted
    return headers


async def test_providers_outside_the_manifest_are_refused_and_reported(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared,
    redis_server: RedisServer,  # noqa: F811 - the fixture
) -> None:
    handle = await start_runner(nursery, runner_settings(debug_redis_url=redis_server.url), shared)
    try:
        # The manifest asks for storage only; the caller lists storage, secrets and ui-proxy.
        digest = await _publish_caps(handle, "caps-storage", ["cap:storage.kv"])
        headers = await _run(handle, digest, ["cap:storage.kv", "cap:secrets.get", "cap:ui.proxy"])
        assert headers["storage.get"] == STORAGE_MISSING  # granted: the store answers
        assert headers["secrets.get"] == SECRET_DENIED  # listed by the caller, not asked for by the manifest
        assert "secrets.get.value" not in headers

        # The refusal reaches the extension's debug stream, once for that invocation.
        key = "ext-debug:grants-t:grants-e"
        with trio.fail_after(10):
            while not (refused := [f for _, f in await entries(redis_server.url, key)  # noqa: ASYNC110 - Redis
                                   if f["message"].startswith("runner: providers not granted")]):
                await trio.sleep(0.05)
        assert [(f["level"], f["message"].rsplit(": ", 1)[1]) for f in refused] == [
            ("warn", "cap:secrets.get, cap:ui.proxy")
        ]
    finally:
        await handle.client.aclose()
        handle.shutdown.set()


async def test_the_manifest_grants_nothing_the_caller_does_not_list(runner: RunnerHandle) -> None:
    digest = await _publish_caps(runner, "caps-secrets", ["cap:secrets.get", "cap:storage.kv"])
    headers = await _run(runner, digest, ["cap:secrets.get"])
    assert headers["secrets.get"] == "ok"  # asked for and listed: granted
    assert headers["secrets.get.value"] == "k-1"
    assert headers["storage.get"] == STORAGE_DENIED  # asked for, not listed (the install was not granted it)
