"""What an extension and a deployment built for the reference runner rely on, against a real runner: the
reference gateway's ``x-runner-service-token`` header, the ``api_key`` secret sent by ui-proxy as
``x-api-key``, ``route-not-found`` from a ui-proxy that is not configured, and the reference's variable names
for the platform's storage and internal API."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

import sealing
from runner_trio import Settings
from runner_trio.capabilities.storage import SqliteStorage
from tests.runner.capabilities._servers import Req, Resp, start_server
from tests.runner.capabilities._storage_api import AUTH_KEY, storage_api
from tests.runner.http.conftest import TOKEN, RunnerHandle, Shared, decode_body, start_runner

PROXY_CAPS = ["cap:ui.proxy"]


async def test_reference_service_token_header_is_accepted(runner: RunnerHandle) -> None:
    digest = await runner.publish_wat("echo")
    doc = {
        "context": {"tenant_id": "t", "extension_id": "e", "content_hash": digest},
        "http": {"method": "GET", "path": "/", "query": {}, "headers": {}, "body_b64": None},
    }
    routing = {"x-alga-tenant": "t", "x-alga-extension": "e"}
    async with httpx.AsyncClient(base_url=runner.url, timeout=60) as client:
        ok = await client.post("/v1/execute", json=doc, headers={**routing, "x-runner-service-token": TOKEN})
        assert ok.status_code == 200, ok.text
        assert ok.json()["status"] == 200
        wrong = await client.post("/v1/execute", json=doc, headers={**routing, "x-runner-service-token": "nope"})
        assert wrong.status_code == 401
        # A wrong reference header does not spoil a right bearer token (either credential suffices).
        both = await client.post("/v1/execute", json=doc, headers={
            **routing, "x-runner-service-token": "nope", "authorization": f"Bearer {TOKEN}"})
        assert both.status_code == 200
        empty = await client.post("/v1/execute", json=doc, headers={**routing, "x-runner-service-token": ""})
        assert empty.status_code == 401


def _body(result: dict[str, Any]) -> Any:
    assert result["error"] is None, result
    return json.loads(decode_body(result))


@pytest.mark.slow
async def test_ui_proxy_sends_the_installs_api_key(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared
) -> None:
    seen: list[Req] = []

    async def host_app(req: Req) -> Resp:
        seen.append(req)
        return Resp.json(200, {"ok": True})

    upstream = await start_server(nursery, host_app)
    private, public = sealing.generate_keypair()
    handle = await start_runner(
        nursery, runner_settings(ui_proxy_base_url=upstream.url, secrets_private_key=private), shared
    )
    digest = await handle.publish_sample("js-kitchen-sink")
    route = json.dumps({"route": "/api/v1/reports"}).encode()

    async def call(envelope: dict[str, Any] | None) -> Any:
        extra = {"secret_envelope": envelope} if envelope is not None else {}
        return _body(await handle.execute(digest, "/ui-proxy", method="POST", body=route, providers=PROXY_CAPS,
                                          extra=extra))

    # cap:secrets.get is not granted: the key authenticates the runner's call, the guest never reads it.
    with_key = sealing.seal({"api_key": "k-123", "other": "x"}, public, tenant_id="tenant-a", extension_id="ext-1")
    answer = await call(with_key)
    assert json.loads(answer["bodyText"]) == {"ok": True}
    without_key = sealing.seal({"other": "x"}, public, tenant_id="tenant-a", extension_id="ext-1")
    await call(without_key)
    await call(None)

    assert [req.path for req in seen] == ["/api/v1/reports"] * 3
    assert [req.header("x-api-key") for req in seen] == ["k-123", None, None]
    assert seen[0].header("x-alga-tenant") == "tenant-a"
    await handle.client.aclose()
    handle.shutdown.set()


@pytest.mark.slow
async def test_unconfigured_ui_proxy_answers_route_not_found(runner: RunnerHandle) -> None:
    digest = await runner.publish_sample("js-kitchen-sink")
    route = json.dumps({"route": "/widgets"}).encode()
    granted = await runner.execute(digest, "/ui-proxy", method="POST", body=route, providers=PROXY_CAPS)
    assert _body(granted) == {"error": "route-not-found"}
    refused = await runner.execute(digest, "/ui-proxy", method="POST", body=route)
    assert _body(refused) == {"error": "denied"}


@pytest.mark.slow
async def test_reference_variable_names_configure_storage_and_platform(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared, tmp_path: Path
) -> None:
    sqlite = SqliteStorage(tmp_path / "platform-storage.sqlite3")
    storage = storage_api(sqlite)
    platform_auth: list[str | None] = []

    async def platform(req: Req) -> Resp:
        if req.path.startswith("/api/internal/ext-storage/"):
            return await storage(req)
        platform_auth.append(req.header("x-runner-auth"))
        return Resp.json(200, {"schedules": []})

    upstream = await start_server(nursery, platform)
    # A reference deployment's environment, read the way `python -m runner_trio` reads it.
    aliased = Settings.from_env({"STORAGE_API_BASE_URL": upstream.url, "RUNNER_STORAGE_API_TOKEN": AUTH_KEY})
    handle = await start_runner(nursery, runner_settings(
        storage_url=aliased.storage_url, storage_auth_key=aliased.storage_auth_key,
        platform_api_url=aliased.platform_api_url, platform_auth_key=aliased.platform_auth_key,
    ), shared)
    digest = await handle.publish_sample("js-kitchen-sink")
    caps = ["cap:storage.kv", "cap:scheduler.manage"]

    async def call(path: str, body: Any) -> Any:
        raw = json.dumps(body).encode()
        return _body(await handle.execute(digest, path, method="POST", body=raw, providers=caps))

    put = await call("/storage", {"op": "put", "namespace": "prefs", "key": "theme", "value": "dark"})
    assert put.get("revision") == 1, put
    got = await call("/storage", {"op": "get", "namespace": "prefs", "key": "theme"})
    assert got["value"] == "dark"
    assert await call("/platform/list-schedules", {}) == {"result": []}
    assert platform_auth == [AUTH_KEY]
    await handle.client.aclose()
    handle.shutdown.set()
    await sqlite.aclose()
