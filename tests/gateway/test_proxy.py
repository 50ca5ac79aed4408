"""``/api/ext/...`` end to end over HTTP: what the runner receives, what the client gets, every refusal."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import replace
from urllib.parse import urlsplit

import h11
import httpx
import pytest
import trio

import sealing
from gateway_quart import create_app
from gateway_quart._state import STATE_KEY

from ._helpers import RunnerReply, never, start_server
from .conftest import Gateway, GatewayFactory, Tenant


async def test_execute_payload_follows_the_contract(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    resp = await gateway.client.get("/api/ext/echo/items/42?a=1&b=2&a=3", headers=tenant.auth)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"method": "GET", "path": "/items/42", "query": {"a": "3", "b": "2"}}

    [call] = gateway.runner.calls
    headers, body = call["headers"], call["body"]
    assert headers["authorization"] == "Bearer service-token-0123456789"
    assert headers["x-alga-tenant"] == "acme"
    assert headers["x-alga-extension"] == "echo"
    assert headers["x-request-id"] == resp.headers["x-request-id"]
    assert "x-idempotency-key" not in headers  # GET
    context = body["context"]
    assert context["tenant_id"] == "acme"
    assert context["extension_id"] == "echo"
    assert context["request_id"] == resp.headers["x-request-id"]
    assert context["content_hash"] == gateway.bundles["v1"]
    assert context["config"] == {"GREETING": "hello"}
    assert context["install_id"]
    assert context["version_id"]
    assert body["http"]["method"] == "GET"
    assert body["http"]["path"] == "/items/42"
    assert body["http"]["body_b64"] is None
    assert body["limits"] == {"timeout_ms": 5000}
    assert body["providers"] == ["cap:http.fetch", "cap:secrets.get"]
    assert body["secret_envelope"] is None
    assert body["user"] == {
        "user_id": tenant.user_id,
        "user_email": "ann@example.com",
        "user_name": "Ann",
        "user_type": "internal",
        "client_name": "",
        "additional_fields": {},
    }


async def test_post_body_and_idempotency_keys(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    payload = json.dumps({"name": "widget"}).encode()
    resp = await gateway.client.post("/api/ext/echo/items", content=payload,
                                     headers={**tenant.auth, "content-type": "application/json"})
    assert resp.status_code == 200
    resp = await gateway.client.post("/api/ext/echo/items", content=b"",
                                     headers={**tenant.auth, "idempotency-key": "order-17"})
    assert resp.status_code == 200
    first, second = gateway.runner.calls
    assert base64.b64decode(first["body"]["http"]["body_b64"]) == payload
    assert first["headers"]["x-idempotency-key"]  # generated for a non-GET without one
    assert second["headers"]["x-idempotency-key"] == "order-17"
    assert second["body"]["http"]["body_b64"] == ""  # an empty body is not "no body"


async def test_headers_are_normalized_both_ways(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    resp = await gateway.client.get(
        "/api/ext/echo/items",
        headers={
            **tenant.auth,
            "cookie": "alga_session=abc",
            "x-request-id": "client-req-1",
            "accept-language": "de",
            "x-custom": "dropped",
            "x-alga-tenant": "acme",
            "proxy-authorization": "Basic abc",
        },
    )
    assert resp.status_code == 200
    forwarded = gateway.runner.calls[0]["body"]["http"]["headers"]
    assert set(forwarded) <= {"x-request-id", "accept", "content-type", "accept-encoding", "user-agent",
                              "accept-language", "x-alga-tenant", "x-alga-extension", "x-idempotency-key"}
    assert forwarded["x-request-id"] == "client-req-1"
    assert forwarded["accept-language"] == "de"
    assert resp.headers["x-request-id"] == "client-req-1"
    # Response side: kept, dropped, and the gateway's own security headers.
    assert resp.headers["x-guest"] == "yes"
    assert resp.headers["etag"] == '"v1"'
    assert resp.headers["content-type"] == "application/json"
    assert "set-cookie" not in resp.headers
    assert "x-alga-internal" not in resp.headers
    assert resp.headers.get("server") != "guest"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in resp.headers["content-security-policy"]


async def test_malformed_request_id_is_refused(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    resp = await gateway.client.get("/api/ext/echo/items", headers={**tenant.auth, "x-request-id": "bad id!"})
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_request_id"
    assert gateway.runner.calls == []


async def test_head_request(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    resp = await gateway.client.head("/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 200
    assert resp.content == b""
    assert gateway.runner.calls[0]["body"]["http"]["method"] == "HEAD"


async def test_secret_envelope_reaches_the_runner_sealed(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    await gateway.admin_put("/api/v1/tenants/acme/installs/echo/secrets", {"secrets": {"API_KEY": "s3cr3t"}},
                            expect=200)
    assert (await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)).status_code == 200
    envelope = gateway.runner.calls[0]["body"]["secret_envelope"]
    assert "s3cr3t" not in json.dumps(envelope)
    opened = sealing.open_envelope(envelope, gateway.private_key, tenant_id="acme", extension_id="echo")
    assert opened == {"API_KEY": "s3cr3t"}


async def test_no_credential_is_401(installed: tuple[Gateway, Tenant]) -> None:
    gateway, _ = installed
    resp = await gateway.client.get("/api/ext/echo/items")
    assert resp.status_code == 401
    assert resp.json()["error"] == "unauthorized"
    assert resp.headers["www-authenticate"].startswith("Bearer")
    resp = await gateway.client.get("/api/ext/echo/items", headers={"authorization": "Bearer agt_unknown"})
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_token"
    assert gateway.runner.calls == []


async def test_tenant_header_may_only_agree(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    resp = await gateway.client.get("/api/ext/echo/items", headers={**tenant.auth, "x-alga-tenant": "other"})
    assert resp.status_code == 403
    assert resp.json()["error"] == "tenant_mismatch"
    assert gateway.runner.calls == []


async def test_not_installed_and_disabled(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    resp = await gateway.client.get("/api/ext/other/items", headers=tenant.auth)
    assert (resp.status_code, resp.json()["error"]) == (404, "not_installed")
    # Another tenant's user sees nothing of acme's install.
    other = await gateway.tenant("globex", email="bob@example.com")
    resp = await gateway.client.get("/api/ext/echo/items", headers=other.auth)
    assert (resp.status_code, resp.json()["error"]) == (404, "not_installed")
    await gateway.admin_post("/api/v1/tenants/acme/installs/echo/disable", {}, expect=200)
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert (resp.status_code, resp.json()["error"]) == (404, "not_installed")
    assert resp.json()["requestId"] == resp.headers["x-request-id"]
    await gateway.admin_post("/api/v1/tenants/acme/installs/echo/enable", {}, expect=200)
    assert (await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)).status_code == 200


async def test_endpoint_must_match_the_manifest(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    for method, path in [("GET", "/nope"), ("DELETE", "/items/1"), ("GET", "/items/1/extra"), ("POST", "/")]:
        resp = await gateway.client.request(method, f"/api/ext/echo{path}", headers=tenant.auth)
        assert (resp.status_code, resp.json()["error"]) == (404, "endpoint_not_found"), (method, path)
    resp = await gateway.client.get("/api/ext/echo/items/%2E%2E", headers=tenant.auth)
    assert (resp.status_code, resp.json()["error"]) == (400, "invalid_path")
    assert gateway.runner.calls == []


async def test_rbac_read_and_write(installed: tuple[Gateway, Tenant]) -> None:
    gateway, _ = installed
    viewer = await gateway.user("acme", roles=["viewer"], email="viv@example.com")
    assert (await gateway.client.get("/api/ext/echo/items", headers=viewer.auth)).status_code == 200
    resp = await gateway.client.post("/api/ext/echo/items", json={}, headers=viewer.auth)
    assert resp.status_code == 403
    assert resp.json() == {"error": "forbidden", "message": "missing permission extension:write",
                           "permission": "extension:write", "requestId": resp.headers["x-request-id"]}
    assert len(gateway.runner.calls) == 1


async def test_rate_limit_per_tenant_and_extension(make_gateway: GatewayFactory) -> None:
    # One token per 100 s: no refill can sneak in between the calls, however slow the machine.
    gateway = await make_gateway(rate_limit_burst=2, rate_limit_rps=0.01)
    await gateway.register(await gateway.publish("v1"))
    acme = await gateway.tenant("acme")
    globex = await gateway.tenant("globex", email="bob@example.com")
    await gateway.install("acme")
    await gateway.install("globex")
    for _ in range(2):
        assert (await gateway.client.get("/api/ext/echo/items", headers=acme.auth)).status_code == 200
    resp = await gateway.client.get("/api/ext/echo/items", headers=acme.auth)
    assert resp.status_code == 429
    assert 90 <= int(resp.headers["retry-after"]) <= 100
    assert resp.json()["error"] == "rate_limited"
    assert (await gateway.client.get("/api/ext/echo/items", headers=globex.auth)).status_code == 200
    assert len(gateway.runner.calls) == 3


async def test_audit_rows_record_each_call(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    ok = await gateway.client.get("/api/ext/echo/items/7", headers=tenant.auth)
    gateway.runner.reply = lambda _: RunnerReply(status=500, error="execute_failed: trap")
    failed = await gateway.client.post("/api/ext/echo/items", json={}, headers=tenant.auth)
    assert failed.status_code == 502
    resp = await gateway.client.get("/api/v1/tenants/acme/audit", headers=gateway.admin)
    assert resp.status_code == 200
    second, first = resp.json()["entries"]
    assert (first["method"], first["path"], first["status"]) == ("GET", "/items/7", 200)
    assert first["request_id"] == ok.headers["x-request-id"]
    assert first["user_id"] == tenant.user_id
    assert (second["method"], second["status"], second["request_id"]) == ("POST", 502, failed.headers["x-request-id"])


async def _raw_exchange(url: str, method: str, path: str, headers: list[tuple[str, str]],
                        chunks: list[bytes]) -> tuple[int, dict[str, str], bytes]:
    """Speak HTTP/1.1 by hand (h11), sending the body in the background, and read the response."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    stream = await trio.open_tcp_stream(parts.hostname, parts.port)
    conn = h11.Connection(h11.CLIENT)
    all_headers = [("host", parts.netloc), *headers]
    await stream.send_all(conn.send(h11.Request(method=method, target=path, headers=all_headers)))

    async def send_body() -> None:
        try:
            for chunk in chunks:
                await stream.send_all(conn.send(h11.Data(data=chunk)))
            await stream.send_all(conn.send(h11.EndOfMessage()))
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError):
            pass  # the server answered early and closed: exactly what is being tested

    status, resp_headers, body = 0, {}, b""
    async with stream, trio.open_nursery() as nursery:
        nursery.start_soon(send_body)
        with trio.fail_after(10):
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    resp_headers = {k.decode(): v.decode() for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        nursery.cancel_scope.cancel()
    return status, resp_headers, body


async def test_413_from_content_length_before_reading(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    declared = 10 * 1024 * 1024 + 1
    status, headers, body = await _raw_exchange(
        gateway.url, "POST", "/api/ext/echo/items",
        [("authorization", tenant.auth["authorization"]), ("content-length", str(declared))],
        [b"x" * 1024],  # far less than declared: the answer must not wait for the rest
    )
    assert status == 413
    assert json.loads(body)["error"] == "payload_too_large"
    assert headers["x-request-id"]
    assert gateway.runner.calls == []


async def test_413_from_a_streamed_body(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(max_body_bytes=64 * 1024)
    await gateway.register(await gateway.publish("v1"))
    tenant = await gateway.tenant("acme")
    await gateway.install("acme")
    status, _, body = await _raw_exchange(
        gateway.url, "POST", "/api/ext/echo/items",
        [("authorization", tenant.auth["authorization"]), ("transfer-encoding", "chunked")],
        [b"y" * 16 * 1024] * 16,  # 256 KiB, no Content-Length
    )
    assert status == 413
    assert json.loads(body) == {"error": "payload_too_large", "message": "request body exceeds 65536 bytes",
                                "limit": 65536, "requestId": json.loads(body)["requestId"]}
    assert gateway.runner.calls == []
    audit = (await gateway.client.get("/api/v1/tenants/acme/audit", headers=gateway.admin)).json()["entries"]
    assert [e["status"] for e in audit] == [413]


async def test_refusals_never_reach_the_runner(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    gateway.runner.reply = never
    await gateway.client.get("/api/ext/echo/items")
    await gateway.client.get("/api/ext/echo/nope", headers=tenant.auth)
    assert gateway.runner.calls == []


async def test_a_method_the_proxy_does_not_serve_is_a_405_naming_those_it_does(
    installed: tuple[Gateway, Tenant],
) -> None:
    gateway, tenant = installed
    resp = await gateway.client.request("TRACE", "/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 405
    assert resp.json() == {"error": "method_not_allowed"}
    assert resp.headers["allow"] == "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", "RFC 9110: a 405 says Allow"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert gateway.runner.calls == []


class Boom(Exception):
    pass


class _BrokenLimiter:
    async def take(self, tenant_id: str, extension_id: str) -> float:
        raise Boom("a bug behind the proxy")


async def test_an_unexpected_failure_in_the_proxy_is_a_json_500_with_its_request_id(
    nursery: trio.Nursery, installed: tuple[Gateway, Tenant], caplog: pytest.LogCaptureFixture
) -> None:
    gateway, tenant = installed
    app = create_app(gateway.settings)  # a second gateway on the same registry, with a broken part put in
    server = await start_server(nursery, app)
    app.extensions[STATE_KEY] = replace(app.extensions[STATE_KEY], limiter=_BrokenLimiter())
    caplog.set_level(logging.ERROR, logger="gateway_quart")
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            resp = await client.get("/api/ext/echo/items", headers={**tenant.auth, "x-request-id": "gw-boom-2"})
    finally:
        await server.close()
    assert resp.status_code == 500
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == {"error": "internal_error",
                           "message": "unexpected error; the service log has it under this request id",
                           "requestId": "gw-boom-2"}
    assert resp.headers["x-request-id"] == "gw-boom-2"
    assert resp.headers["content-security-policy"].startswith("default-src 'none'")
    [record] = [r for r in caplog.records if "gw-boom-2" in r.getMessage()]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], Boom)
    assert gateway.runner.calls == []
