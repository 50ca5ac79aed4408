"""The toolchain-built samples through ``POST /v1/execute``: componentize-py and componentize-js guests, and every
host capability end to end (egress to a real local server, SQLite storage, sealed secrets, ui-proxy and the
platform API against a real local server)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import trio

import sealing
from runner_trio import Settings
from tests._timing import DEADLINE_SLACK_S
from tests.runner.capabilities._servers import Req, Resp, Server, start_server
from tests.runner.http.conftest import RunnerHandle, Shared, decode_body, start_runner

pytestmark = pytest.mark.slow

ALL_CAPS = [
    "cap:context.read", "cap:secrets.get", "cap:http.fetch", "cap:storage.kv", "cap:log.emit", "cap:ui.proxy",
    "cap:user.read", "cap:scheduler.manage", "cap:invoice.manual.create", "cap:client.read", "cap:service.read",
]
USER = {"user_id": "u-1", "user_email": "ada@example.com", "user_name": "Ada", "user_type": "internal",
        "client_name": "Acme", "client_id": "c-9", "additional_fields": {"plan": "gold"}}


def body_json(result: dict[str, Any]) -> Any:
    assert result["error"] is None, result
    return json.loads(decode_body(result))


async def test_python_guest(runner: RunnerHandle) -> None:
    digest = await runner.publish_sample("py-hello")
    hello = await runner.execute(digest, "/hello", query={"name": "ada"})
    assert hello["status"] == 200
    assert body_json(hello) == {"greeting": "hello ada", "tenant": "tenant-a"}
    echo = await runner.execute(digest, "/echo", method="POST", body=b"\x01\x02",
                                http_headers={"content-type": "application/x-test"})
    assert decode_body(echo) == b"\x01\x02"
    assert echo["headers"]["content-type"] == "application/x-test"
    trap = await runner.execute(digest, "/raise")
    assert trap["error"] == "execute_failed: trap"


async def test_python_guest_sleep_is_cut_at_deadline(runner: RunnerHandle) -> None:
    digest = await runner.publish_sample("py-hello")
    await runner.execute(digest, "/hello")
    started = trio.current_time()
    result = await runner.execute(digest, "/sleep", query={"ms": "15000"}, limits={"timeout_ms": 300})
    assert result["error"] == "execute_failed: timeout"
    assert trio.current_time() - started < 0.3 + DEADLINE_SLACK_S  # not the 15 s asked for


async def test_python_guest_memory_limit(runner: RunnerHandle) -> None:
    digest = await runner.publish_sample("py-hello")
    result = await runner.execute(digest, "/alloc", query={"mb": "200"}, limits={"memory_mb": 64})
    assert result["status"] == 500
    assert result["error"] in {"execute_failed: memory_limit", "execute_failed: trap"}
    ok = await runner.execute(digest, "/alloc", query={"mb": "4"}, limits={"memory_mb": 64})
    assert body_json(ok) == {"allocated_mb": 4}


async def test_js_guest_echo_context_user(runner: RunnerHandle) -> None:
    digest = await runner.publish_sample("js-kitchen-sink")
    echo = await runner.execute(digest, "/echo", method="POST", body=b"abc", query={"x": "1"})
    data = body_json(echo)
    assert data["method"] == "POST"
    assert data["url"] == "/echo?x=1"
    assert data["bodyLength"] == 3
    assert echo["headers"]["x-echo"] == "1"
    assert echo["headers"]["content-type"] == "application/json"
    context = body_json(await runner.execute(digest, "/context"))
    assert context["tenantId"] == "tenant-a"
    assert context["extensionId"] == "ext-1"
    assert context["installId"] == "inst-1"
    assert context["requestId"]
    user = body_json(await runner.execute(digest, "/user-v2", extra={"user": USER}))
    assert user["userEmail"] == "ada@example.com"
    assert user["clientId"] == "c-9"
    assert user["additionalFields"] == [["plan", "gold"]]
    no_user = body_json(await runner.execute(digest, "/user"))
    assert no_user == {"error": "not-available"}


async def test_js_guest_denied_without_grants(runner: RunnerHandle) -> None:
    digest = await runner.publish_sample("js-kitchen-sink")
    assert body_json(await runner.execute(digest, "/secrets", query={"key": "k"})) == {"error": "denied"}
    fetch = await runner.execute(digest, "/http", method="POST", body=b'{"url": "http://127.0.0.1:9/x"}')
    assert body_json(fetch) == {"error": "not-allowed"}
    storage_body = b'{"op": "get", "namespace": "n", "key": "k"}'
    storage = await runner.execute(digest, "/storage", method="POST", body=storage_body)
    assert body_json(storage) == {"error": "denied"}


def _upstream(seen_auth: list[str]) -> Callable[[Req], Any]:
    async def handler(req: Req) -> Resp:
        seen_auth.append(req.header("x-runner-auth") or req.header("authorization") or "")
        if req.path == "/hello":
            return Resp(200, [("content-type", "text/plain"), ("x-up", "1")], b"upstream says hi")
        if req.path == "/redirect":
            return Resp(302, [("location", "http://169.254.169.254/latest")], b"")
        if req.path == "/ext-1/widgets":
            return Resp.json(200, {"widgets": [1, 2], "payload": req.body.decode() or None})
        if req.path.startswith("/api/internal/ext-scheduler/install/inst-1"):
            return Resp.json(200, {"schedules": []})
        if req.path.startswith("/api/internal/ext-clients/install/inst-1"):
            item = {"clientId": "c-1", "clientName": "Acme", "isInactive": False}
            return Resp.json(200, {"items": [item], "totalCount": 1, "page": 1, "pageSize": 25})
        return Resp.json(404, {"error": "nope"})

    return handler


async def test_js_guest_every_capability_end_to_end(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared
) -> None:
    seen_auth: list[str] = []
    upstream: Server = await start_server(nursery, _upstream(seen_auth))
    private, public = sealing.generate_keypair()
    handle = await start_runner(
        nursery,
        runner_settings(
            egress_allowlist=(f"127.0.0.1:{upstream.port}",),
            ui_proxy_base_url=upstream.url,
            ui_proxy_auth_key="ui-key",
            platform_api_url=upstream.url,
            platform_auth_key="platform-key",
            secrets_private_key=private,
        ),
        shared,
    )
    digest = await handle.publish_sample("js-kitchen-sink")
    envelope = sealing.seal({"api_key": "s3cr3t-value"}, public, tenant_id="tenant-a", extension_id="ext-1")
    assert envelope["algorithm"] == "hpke-x25519-chacha20poly1305:v2"  # the default: HPKE end to end

    async def call(path: str, body: Any = None, **kwargs: Any) -> Any:
        raw = json.dumps(body).encode() if body is not None else None
        method = "POST" if body is not None else "GET"
        return body_json(await handle.execute(digest, path, method=method, body=raw, providers=ALL_CAPS, **kwargs))

    # secrets: sealed to the runner, opened per invocation
    got = await call("/secrets", query={"key": "api_key"}, extra={"secret_envelope": envelope})
    assert got == {"key": "api_key", "value": "s3cr3t-value"}
    keys = await call("/secrets/list", extra={"secret_envelope": envelope})
    assert keys == {"keys": ["api_key"]}
    assert await call("/secrets", query={"key": "other"}, extra={"secret_envelope": envelope}) == {"error": "missing"}
    other_tenant = sealing.seal({"api_key": "x"}, public, tenant_id="tenant-b", extension_id="ext-1")
    stolen = await handle.execute(digest, "/secrets", query={"key": "api_key"}, providers=ALL_CAPS,
                                  extra={"secret_envelope": other_tenant})
    assert stolen["status"] == 500
    assert stolen["error"].startswith("secret_decrypt_failed")

    # http: allowed by an explicit entry; redirects returned, not followed; other hosts refused
    fetched = await call("/http", {"url": f"{upstream.url}/hello"})
    assert fetched["status"] == 200
    assert fetched["bodyText"] == "upstream says hi"
    redirect = await call("/http", {"url": f"{upstream.url}/redirect"})
    assert redirect["status"] == 302
    assert await call("/http", {"url": "http://127.0.0.1:1/"}) == {"error": "not-allowed"}
    assert await call("/http", {"url": "http://example.invalid/"}) == {"error": "not-allowed"}

    # storage: revisions, compare-and-swap, list; scoped per install
    put = await call("/storage", {"op": "put", "namespace": "prefs", "key": "theme", "value": "dark"})
    assert put.get("revision") == 1, put
    cas = await call("/storage", {"op": "put", "namespace": "prefs", "key": "theme", "value": "light", "revision": 1})
    assert cas["revision"] == 2
    stale = await call("/storage", {"op": "put", "namespace": "prefs", "key": "theme", "value": "x", "revision": 1})
    assert stale == {"error": "conflict"}
    listed = await call("/storage", {"op": "list", "namespace": "prefs"})
    assert [(e["key"], e["value"]) for e in listed["entries"]] == [("theme", "light")]
    other_install = body_json(await handle.execute(
        digest, "/storage", method="POST", providers=ALL_CAPS, tenant="tenant-b",
        body=json.dumps({"op": "get", "namespace": "prefs", "key": "theme"}).encode(),
    ))
    assert other_install == {"error": "missing"}

    # ui-proxy and the platform API against the local server
    proxied = await call("/ui-proxy", {"route": "/widgets", "payload": "hi"})
    assert json.loads(proxied["bodyText"]) == {"widgets": [1, 2], "payload": "hi"}
    assert await call("/ui-proxy", {"route": "/missing"}) == {"error": "route-not-found"}
    schedules = await call("/platform/list-schedules", {})
    assert schedules == {"result": []}
    clients = await call("/platform/list-clients", {"input": {"search": "ac"}})
    assert clients["result"]["totalCount"] == 1
    assert clients["result"]["items"][0]["clientName"] == "Acme"
    assert "platform-key" in seen_auth
    assert "Bearer ui-key" in seen_auth

    # logging: 204 and nothing leaks
    logged = await handle.execute(digest, "/log", query={"msg": "hello log"}, providers=ALL_CAPS)
    assert logged["status"] == 204
    metrics = (await handle.client.get("/metrics")).text
    assert "runner_egress_denied_total 2.0" in metrics
    await handle.client.aclose()
    handle.shutdown.set()
