"""What reference UIs and host pages rely on at the gateway: ``__method`` overrides, the ``x-alga-*`` and
``x-idempotency-key`` request headers guests see, ``/api/ext/<id>`` without a slash, and ``/api/ext-proxy``."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from ._helpers import ENDPOINTS
from .conftest import Gateway, GatewayFactory, Tenant


def guest_body(call: dict[str, Any]) -> bytes | None:
    encoded = call["body"]["http"]["body_b64"]
    return None if encoded is None else base64.b64decode(encoded)


async def test_query_override(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    resp = await gateway.client.post("/api/ext/echo/items?__method=GET&page=2", headers=tenant.auth)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"method": "GET", "path": "/items", "query": {"page": "2"}}  # the key is not sent on
    resp = await gateway.client.post("/api/ext/echo/items/7?__method=put", content=b"raw", headers=tenant.auth)
    assert resp.json()["method"] == "PUT"
    assert guest_body(gateway.runner.calls[-1]) == b"raw"

    # Only to a method the endpoint declares (DELETE /items/:id is not), and only to a known method.
    resp = await gateway.client.post("/api/ext/echo/items/7?__method=DELETE", headers=tenant.auth)
    assert (resp.status_code, resp.json()["error"]) == (404, "endpoint_not_found")
    resp = await gateway.client.post("/api/ext/echo/items?__method=TRACE", headers=tenant.auth)
    assert (resp.status_code, resp.json()["error"]) == (400, "invalid_method")
    # A GET's __method is just a query parameter.
    resp = await gateway.client.get("/api/ext/echo/items?__method=POST", headers=tenant.auth)
    assert resp.json() == {"method": "GET", "path": "/items", "query": {"__method": "POST"}}
    assert len(gateway.runner.calls) == 3


async def test_json_body_override(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    resp = await gateway.client.post("/api/ext/echo/items/7", json={"__method": "PUT", "name": "x"},
                                     headers=tenant.auth)
    assert resp.json()["method"] == "PUT"
    assert json.loads(guest_body(gateway.runner.calls[-1]) or b"") == {"name": "x"}

    resp = await gateway.client.post("/api/ext/echo/items", json={"__method": "GET"}, headers=tenant.auth)
    assert resp.json()["method"] == "GET"
    assert guest_body(gateway.runner.calls[-1]) is None  # the key was all there was

    plain = json.dumps({"name": "y", "method": "GET"}).encode()
    resp = await gateway.client.post("/api/ext/echo/items", content=plain,
                                     headers={**tenant.auth, "content-type": "application/json"})
    assert resp.json()["method"] == "POST"
    assert guest_body(gateway.runner.calls[-1]) == plain  # untouched without the key

    resp = await gateway.client.post("/api/ext/echo/items/7", json={"__method": "DELETE"}, headers=tenant.auth)
    assert (resp.status_code, resp.json()["error"]) == (404, "endpoint_not_found")
    resp = await gateway.client.post("/api/ext/echo/items", json={"__method": "CONNECT"}, headers=tenant.auth)
    assert (resp.status_code, resp.json()["error"]) == (400, "invalid_method")
    assert len(gateway.runner.calls) == 3


async def test_override_decides_the_permission(installed: tuple[Gateway, Tenant]) -> None:
    gateway, _ = installed
    viewer = await gateway.user("acme", roles=["viewer"], email="viv@example.com")
    resp = await gateway.client.post("/api/ext/echo/items?__method=GET", headers=viewer.auth)
    assert resp.status_code == 200
    resp = await gateway.client.post("/api/ext/echo/items", json={"__method": "GET"}, headers=viewer.auth)
    assert resp.status_code == 200
    resp = await gateway.client.post("/api/ext/echo/items/7", json={"__method": "PUT"}, headers=viewer.auth)
    assert resp.status_code == 403
    resp = await gateway.client.post("/api/ext/echo/items", json={"name": "x"}, headers=viewer.auth)
    assert resp.status_code == 403
    assert [c["body"]["http"]["method"] for c in gateway.runner.calls] == ["GET", "GET"]
    audit = (await gateway.client.get("/api/v1/tenants/acme/audit", headers=gateway.admin)).json()["entries"]
    assert sorted(e["method"] for e in audit) == ["GET", "GET"]  # the method the guest was called with


async def test_guests_see_tenant_extension_and_idempotency_key(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    await gateway.client.get("/api/ext/echo/items", headers={**tenant.auth, "x-alga-extension": "spoofed"})
    await gateway.client.get("/api/ext/echo/items", headers={**tenant.auth, "x-idempotency-key": "caller-1"})
    await gateway.client.post("/api/ext/echo/items", json={}, headers=tenant.auth)
    await gateway.client.post("/api/ext/echo/items", json={}, headers={**tenant.auth, "idempotency-key": "k-2"})
    plain_get, keyed_get, post, keyed_post = (c["body"]["http"]["headers"] for c in gateway.runner.calls)
    for headers in (plain_get, keyed_get, post, keyed_post):
        assert (headers["x-alga-tenant"], headers["x-alga-extension"]) == ("acme", "echo")
    assert "x-idempotency-key" not in plain_get
    assert keyed_get["x-idempotency-key"] == "caller-1"
    assert post["x-idempotency-key"]  # generated for a non-GET, the same the runner got
    assert post["x-idempotency-key"] == gateway.runner.calls[2]["headers"]["x-idempotency-key"]
    assert keyed_post["x-idempotency-key"] == "k-2"


async def test_extension_root_without_a_trailing_slash(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway()
    endpoints = [{"method": "GET", "path": "/", "handler": "root"}, *ENDPOINTS]
    await gateway.register(await gateway.publish("v1", api={"endpoints": endpoints}))
    tenant = await gateway.tenant("acme")
    await gateway.install("acme")
    for path in ("/api/ext/echo", "/api/ext/echo/", "/api/ext-proxy/echo", "/api/ext-proxy/echo/"):
        resp = await gateway.client.get(path, headers=tenant.auth)
        assert resp.status_code == 200, (path, resp.status_code)
        assert resp.json()["path"] == "/"


async def test_ext_proxy_route_answers_like_api_ext(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    resp = await gateway.client.get("/api/ext-proxy/echo/items/42?a=1", headers=tenant.auth)
    assert resp.status_code == 200
    assert resp.json() == {"method": "GET", "path": "/items/42", "query": {"a": "1"}}
    resp = await gateway.client.post("/api/ext-proxy/echo/items", json={"__method": "GET"}, headers=tenant.auth)
    assert resp.json()["method"] == "GET"
    assert resp.headers["x-request-id"]
    assert "sandbox" in resp.headers["content-security-policy"]

    assert (await gateway.client.get("/api/ext-proxy/echo/items")).status_code == 401
    resp = await gateway.client.get("/api/ext-proxy/nope/items", headers=tenant.auth)
    assert (resp.status_code, resp.json()["error"]) == (404, "not_installed")
    resp = await gateway.client.get("/api/ext-proxy/echo/nope", headers=tenant.auth)
    assert (resp.status_code, resp.json()["error"]) == (404, "endpoint_not_found")
    viewer = await gateway.user("acme", roles=["viewer"], email="viv@example.com")
    assert (await gateway.client.post("/api/ext-proxy/echo/items", json={}, headers=viewer.auth)).status_code == 403
    assert len(gateway.runner.calls) == 2


@pytest.mark.parametrize("prefix", ["/api/ext", "/api/ext-proxy"])
async def test_ext_proxy_shares_the_rate_limit(make_gateway: GatewayFactory, prefix: str) -> None:
    gateway = await make_gateway(rate_limit_burst=2, rate_limit_rps=0.01)
    await gateway.register(await gateway.publish("v1"))
    tenant = await gateway.tenant("acme")
    await gateway.install("acme")
    other = "/api/ext-proxy" if prefix == "/api/ext" else "/api/ext"
    assert (await gateway.client.get(f"{prefix}/echo/items", headers=tenant.auth)).status_code == 200
    assert (await gateway.client.get(f"{other}/echo/items", headers=tenant.auth)).status_code == 200
    resp = await gateway.client.post(f"{prefix}/echo/items", json={"__method": "GET"}, headers=tenant.auth)
    assert resp.status_code == 429
    assert resp.headers["retry-after"]
    assert len(gateway.runner.calls) == 2
