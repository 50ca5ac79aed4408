"""Browser-facing parts: session cookies, CSRF and CORS on /api/ext, the /ext-ui gate, the runner's check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from contract import UiUrlSigner

from .conftest import SERVICE_TOKEN, UI_KEY, Gateway, GatewayFactory, Tenant


@asynccontextmanager
async def _login(gateway: Gateway, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client that keeps cookies, like a browser, signed in with ``token``."""
    async with httpx.AsyncClient(base_url=gateway.url) as browser:
        resp = await browser.post("/api/session", json={"token": token})
        assert resp.status_code == 200, resp.text
        cookie = resp.headers["set-cookie"]
        assert "alga_session=" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        yield browser


async def test_session_cookie_login_and_logout(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    async with _login(gateway, tenant.token) as browser:
        resp = await browser.get("/api/ext/echo/items")
        assert resp.status_code == 200
        assert gateway.runner.calls[0]["body"]["user"]["user_id"] == tenant.user_id
        assert "cookie" not in gateway.runner.calls[0]["body"]["http"]["headers"]
        assert (await browser.delete("/api/session")).status_code == 204
        assert (await browser.get("/api/ext/echo/items")).status_code == 401


async def test_bad_login_and_forged_cookie(installed: tuple[Gateway, Tenant]) -> None:
    gateway, _ = installed
    resp = await gateway.client.post("/api/session", json={"token": "agt_nope"})
    assert (resp.status_code, resp.json()["error"]) == (401, "invalid_token")
    resp = await gateway.client.get("/api/ext/echo/items", headers={"cookie": "alga_session=forged.value.sig"})
    assert (resp.status_code, resp.json()["error"]) == (401, "session_expired")


async def test_session_ends_with_its_token(installed: tuple[Gateway, Tenant]) -> None:
    gateway, _ = installed
    minted = await gateway.admin_post(f"/api/v1/users/{installed[1].user_id}/tokens", {}, expect=201)
    async with _login(gateway, minted["token"]) as browser:
        assert (await browser.get("/api/ext/echo/items")).status_code == 200
        await gateway.client.delete(f"/api/v1/tokens/{minted['id']}", headers=gateway.admin)
        assert (await browser.get("/api/ext/echo/items")).status_code == 401


async def test_cookie_writes_need_a_trusted_origin(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(allowed_origins=("https://app.example.test",))
    await gateway.register(await gateway.publish("v1"))
    tenant = await gateway.tenant("acme")
    await gateway.install("acme")
    async with _login(gateway, tenant.token) as browser:
        resp = await browser.post("/api/ext/echo/items", json={}, headers={"origin": "https://evil.example"})
        assert (resp.status_code, resp.json()["error"]) == (403, "origin_not_allowed")
        resp = await browser.post("/api/ext/echo/items", json={}, headers={"origin": "https://app.example.test"})
        assert resp.status_code == 200
        assert resp.headers["access-control-allow-origin"] == "https://app.example.test"
        assert resp.headers["access-control-allow-credentials"] == "true"
        resp = await browser.post("/api/ext/echo/items", json={}, headers={"origin": gateway.url})
        assert resp.status_code == 200
    # A bearer token is never sent implicitly: no origin check.
    resp = await gateway.client.post("/api/ext/echo/items", json={},
                                     headers={**tenant.auth, "origin": "https://evil.example"})
    assert resp.status_code == 200
    assert "access-control-allow-origin" not in resp.headers


async def test_cors_preflight(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(allowed_origins=("https://app.example.test",))
    preflight = {"origin": "https://app.example.test", "access-control-request-method": "POST"}
    resp = await gateway.client.options("/api/ext/echo/items", headers=preflight)
    assert resp.status_code == 204
    assert resp.headers["access-control-allow-origin"] == "https://app.example.test"
    assert "POST" in resp.headers["access-control-allow-methods"]
    resp = await gateway.client.options("/api/ext/echo/items", headers={**preflight, "origin": "https://evil.example"})
    assert (resp.status_code, resp.json()["error"]) == (403, "origin_not_allowed")


async def test_ext_ui_gate_redirects_to_a_signed_runner_url(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    content_hash = gateway.bundles["v1"]
    hex_digest = content_hash.removeprefix("sha256:")
    resp = await gateway.client.get(f"/ext-ui/echo/{content_hash}/assets/app.js?path=/x&tenant=evil",
                                    headers=tenant.auth)
    assert resp.status_code == 308
    prefix = f"https://runner.example.test/ext-ui/echo/{content_hash}/~t/"
    location = resp.headers["location"]
    assert location.startswith(prefix)
    token, _, rest = location.removeprefix(prefix).partition("/")
    assert rest == "assets/app.js?path=%2Fx"  # no ?tenant=: the runner learns the tenant from the token only
    # The token is what a runner with the same key verifies, for the caller's tenant and this (extension, hash).
    assert UiUrlSigner(UI_KEY).verify(token, extension="echo", hex_digest=hex_digest) == "acme"
    assert UiUrlSigner(UI_KEY).verify(token, extension="other", hex_digest=hex_digest) is None
    resp = await gateway.client.get(f"/ext-ui/echo/{content_hash}/", headers=tenant.auth)
    assert resp.headers["location"].startswith(prefix)
    assert resp.headers["location"].endswith("/")
    async with _login(gateway, tenant.token) as browser:
        assert (await browser.get(f"/ext-ui/echo/{content_hash}/index.html")).status_code == 308


async def test_ext_ui_gate_without_a_key_names_no_tenant(
    make_gateway: GatewayFactory, installed: tuple[Gateway, Tenant]
) -> None:
    gateway, tenant = installed
    unsigned = await make_gateway(ui_signing_key=None, registry_database=gateway.settings.registry_database)
    content_hash = gateway.bundles["v1"]
    resp = await unsigned.client.get(f"/ext-ui/echo/{content_hash}/index.html?tenant=evil", headers=tenant.auth)
    assert resp.headers["location"] == f"https://runner.example.test/ext-ui/echo/{content_hash}/index.html"


async def test_ext_ui_gate_refusals(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    content_hash = gateway.bundles["v1"]
    assert (await gateway.client.get(f"/ext-ui/echo/{content_hash}/index.html")).status_code == 401
    wrong = "sha256:" + "1" * 64
    for path in [f"/ext-ui/echo/{wrong}/index.html", f"/ext-ui/other/{content_hash}/index.html",
                 "/ext-ui/echo/not-a-hash/index.html"]:
        resp = await gateway.client.get(path, headers=tenant.auth)
        assert (resp.status_code, resp.json()["error"]) == (404, "not_installed"), path
    other = await gateway.tenant("globex", email="bob@example.com")
    resp = await gateway.client.get(f"/ext-ui/echo/{content_hash}/index.html", headers=other.auth)
    assert resp.status_code == 404


async def test_install_validation_for_the_runner(installed: tuple[Gateway, Tenant]) -> None:
    gateway, _ = installed
    service = {"authorization": f"Bearer {SERVICE_TOKEN}"}
    params = {"tenant": "acme", "extension": "echo", "hash": gateway.bundles["v1"]}
    resp = await gateway.client.get("/api/installs/validate", params=params, headers=service)
    assert resp.json() == {"valid": True}
    resp = await gateway.client.get("/api/installs/validate", params={**params, "tenant": "globex"}, headers=service)
    assert resp.json() == {"valid": False}
    resp = await gateway.client.get("/api/installs/validate", params={**params, "hash": "sha256:" + "a" * 64},
                                    headers=service)
    assert resp.json() == {"valid": False}
    assert (await gateway.client.get("/api/installs/validate", params=params)).status_code == 401
    resp = await gateway.client.get("/api/installs/validate", params=params,
                                    headers={"authorization": "Bearer nope"})
    assert resp.status_code == 401
    resp = await gateway.client.get("/api/installs/validate", params={"tenant": "acme"}, headers=service)
    assert resp.status_code == 400
    assert set(resp.json()["fields"]) == {"extension", "hash"}
    # Without a tenant (a UI's own assets): does any tenant have an active install at that hash?
    anyone = {"extension": "echo", "hash": gateway.bundles["v1"]}
    resp = await gateway.client.get("/api/installs/validate", params=anyone, headers=service)
    assert resp.json() == {"valid": True}
    resp = await gateway.client.get("/api/installs/validate", params={**anyone, "hash": "sha256:" + "a" * 64},
                                    headers=service)
    assert resp.json() == {"valid": False}
    resp = await gateway.client.get("/api/installs/validate", params={**anyone, "extension": "other"},
                                    headers=service)
    assert resp.json() == {"valid": False}


async def test_install_lookup_for_an_isolated_ui_origin(installed: tuple[Gateway, Tenant]) -> None:
    """Without a hash, the runner serving (tenant, extension)'s own UI origin learns which hash to serve."""
    gateway, _ = installed
    service = {"authorization": f"Bearer {SERVICE_TOKEN}"}
    lookup = {"tenant": "acme", "extension": "echo"}
    resp = await gateway.client.get("/api/installs/validate", params=lookup, headers=service)
    assert resp.json() == {"valid": True, "content_hash": gateway.bundles["v1"]}
    for other in ({**lookup, "tenant": "globex"}, {**lookup, "extension": "other"}):
        resp = await gateway.client.get("/api/installs/validate", params=other, headers=service)
        assert resp.json() == {"valid": False, "content_hash": None}
    assert (await gateway.client.get("/api/installs/validate", params=lookup)).status_code == 401
    resp = await gateway.client.get("/api/installs/validate", params={"extension": "echo"}, headers=service)
    assert (resp.status_code, set(resp.json()["fields"])) == (400, {"hash"})
