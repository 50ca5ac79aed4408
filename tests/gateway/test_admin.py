"""The admin API over HTTP: tenants, users, tokens, registration, the install flow, config, secrets, grants."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import sealing

from .conftest import Gateway, GatewayFactory, Tenant


async def test_admin_flow(gateway: Gateway) -> None:
    tenant = await gateway.admin_post("/api/v1/tenants", {"id": "acme", "name": "Acme"}, expect=201)
    assert tenant["id"] == "acme"
    user = await gateway.admin_post("/api/v1/tenants/acme/users",
                                    {"email": "ann@example.com", "roles": ["member"], "user_type": "client",
                                     "client_name": "Acme Client", "client_id": "c-1"}, expect=201)
    assert user["roles"] == ["member"]
    minted = await gateway.admin_post(f"/api/v1/users/{user['id']}/tokens", {"name": "cli", "expires_in_s": 3600},
                                      expect=201)
    assert minted["token"].startswith("agt_")
    assert minted["expires_at"]
    me = await gateway.client.get("/api/v1/me", headers={"authorization": f"Bearer {minted['token']}"})
    assert me.status_code == 200
    assert me.json()["tenant_id"] == "acme"
    assert me.json()["permissions"] == ["extension:read", "extension:write"]

    content_hash = await gateway.publish("v1")
    resp = await gateway.client.post("/api/v1/extensions", json={"content_hash": content_hash}, headers=gateway.admin)
    assert resp.status_code == 201, resp.text
    registered = resp.json()
    assert registered["created"] is True
    assert registered["extension"]["name"] == "com.example.echo"
    assert registered["version"]["content_hash"] == content_hash
    assert registered["version"]["signature_status"] == "unsigned"
    assert registered["version"]["capabilities"] == ["cap:http.fetch", "cap:secrets.get", "cap:storage.kv"]
    # Registering the same bundle again is idempotent.
    again = await gateway.client.post("/api/v1/extensions", json={"content_hash": content_hash},
                                      headers=gateway.admin)
    assert again.status_code == 200
    assert again.json()["version"]["id"] == registered["version"]["id"]
    extension_id = registered["extension"]["id"]

    install = await gateway.install("acme", extension_id, config={"MODE": "test"})
    assert install["enabled"] is True
    assert install["granted_capabilities"] == []
    assert install["requested_capabilities"] == ["cap:http.fetch", "cap:secrets.get", "cap:storage.kv"]
    assert install["config"] == {"MODE": "test"}
    resp = await gateway.client.post("/api/v1/tenants/acme/installs", json={"extension_id": extension_id},
                                     headers=gateway.admin)
    assert (resp.status_code, resp.json()["error"]) == (409, "already_installed")

    base = f"/api/v1/tenants/acme/installs/{extension_id}"
    assert (await gateway.client.get(base, headers=gateway.admin)).json()["id"] == install["id"]
    listing = (await gateway.client.get("/api/v1/tenants/acme/installs", headers=gateway.admin)).json()
    assert [i["extension_id"] for i in listing["installs"]] == [extension_id]
    assert (await gateway.client.delete(base, headers=gateway.admin)).status_code == 204
    resp = await gateway.client.get(base, headers=gateway.admin)
    assert (resp.status_code, resp.json()["error"]) == (404, "not_installed")


async def test_signed_bundle_is_recorded(gateway: Gateway) -> None:
    registered = await gateway.register(await gateway.publish("signed", signed=True))
    assert registered["version"]["signature_status"] == "signed_unverified"


async def test_register_refusals(gateway: Gateway) -> None:
    resp = await gateway.client.post("/api/v1/extensions", json={"content_hash": "sha256:" + "0" * 64},
                                     headers=gateway.admin)
    assert (resp.status_code, resp.json()["error"]) == (404, "bundle_not_found")
    resp = await gateway.client.post("/api/v1/extensions", json={"content_hash": "md5:abc"}, headers=gateway.admin)
    assert resp.status_code == 400
    assert resp.json()["fields"] == {"content_hash": "must be sha256: followed by 64 hex digits"}
    # One extension id per (publisher, name).
    first = await gateway.register(await gateway.publish("v1"), extension_id="echo")
    resp = await gateway.client.post("/api/v1/extensions",
                                     json={"content_hash": first["version"]["content_hash"], "extension_id": "other"},
                                     headers=gateway.admin)
    assert (resp.status_code, resp.json()["error"]) == (409, "extension_conflict")


async def test_upgrade_disable_enable_and_grants(gateway: Gateway) -> None:
    v1 = await gateway.publish("v1")
    v2 = await gateway.publish("v2", version="1.1.0", capabilities=["cap:http.fetch"])
    await gateway.register(v1)
    registered = await gateway.register(v2)
    await gateway.tenant("acme")
    install = await gateway.install("acme", content_hash=v1,
                                    granted_capabilities=["cap:http.fetch", " CAP:Storage.KV "])
    assert install["granted_capabilities"] == ["cap:http.fetch", "cap:storage.kv"]
    assert install["content_hash"] == v1

    resp = await gateway.client.put("/api/v1/tenants/acme/installs/echo/capabilities",
                                    json={"capabilities": ["cap:scheduler.manage", "cap:nope", "cap:log.emit"]},
                                    headers=gateway.admin)
    assert resp.status_code == 400
    assert resp.json()["fields"] == {
        "capabilities[0]": "cap:scheduler.manage is not requested by the manifest",
        "capabilities[1]": "cap:nope is not a known capability",
    }

    upgraded = await gateway.admin_post("/api/v1/tenants/acme/installs/echo/upgrade", {"content_hash": v2},
                                        expect=200)
    assert upgraded["version_id"] == registered["version"]["id"]
    assert upgraded["version"] == "1.1.0"
    assert upgraded["granted_capabilities"] == ["cap:http.fetch"]  # storage.kv no longer requested
    disabled = await gateway.admin_post("/api/v1/tenants/acme/installs/echo/disable", {}, expect=200)
    assert disabled["enabled"] is False
    enabled = await gateway.admin_post("/api/v1/tenants/acme/installs/echo/enable", {}, expect=200)
    assert enabled["enabled"] is True
    resp = await gateway.client.post("/api/v1/tenants/acme/installs/echo/upgrade", json={"version_id": "nope"},
                                     headers=gateway.admin)
    assert (resp.status_code, resp.json()["error"]) == (404, "version_not_found")


async def test_config_is_validated_and_replaced(installed: tuple[Gateway, Tenant]) -> None:
    gateway, _ = installed
    body = await gateway.admin_put("/api/v1/tenants/acme/installs/echo/config", {"config": {"A": "1", "B": "2"}},
                                   expect=200)
    assert body["config"] == {"A": "1", "B": "2"}
    resp = await gateway.client.put("/api/v1/tenants/acme/installs/echo/config",
                                    json={"config": {"A": 1, "bad key": "x"}, "extra": True}, headers=gateway.admin)
    assert resp.status_code == 400
    assert resp.json() == {
        "error": "invalid_request",
        "fields": {
            "config.A": "must be a string",
            "config.bad key": "key must be 1-128 characters of A-Z a-z 0-9 . _ -",
            "extra": "unknown field",
        },
    }


async def test_strict_json_validation(gateway: Gateway) -> None:
    resp = await gateway.client.post("/api/v1/tenants", content=b"{not json", headers=gateway.admin)
    assert (resp.status_code, resp.json()["fields"]) == (400, {"$": "body must be a JSON object"})
    resp = await gateway.client.post("/api/v1/tenants", json=["a"], headers=gateway.admin)
    assert resp.json()["fields"] == {"$": "must be a JSON object", "name": "is required"}
    resp = await gateway.client.post("/api/v1/tenants", json={"id": "bad id", "name": 5, "x": 1},
                                     headers=gateway.admin)
    assert resp.json()["fields"] == {
        "id": "must be 1-128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit",
        "name": "must be a string",
        "x": "unknown field",
    }
    await gateway.admin_post("/api/v1/tenants", {"id": "acme", "name": "Acme"}, expect=201)
    resp = await gateway.client.post("/api/v1/tenants/acme/users", json={"email": "nope", "roles": ["root"]},
                                     headers=gateway.admin)
    assert resp.json()["fields"] == {"email": "must be an email address",
                                     "roles[0]": "must be one of: admin, member, viewer"}


async def test_secrets_are_sealed_never_stored_or_echoed(installed: tuple[Gateway, Tenant]) -> None:
    gateway, _ = installed
    plaintext = "pa55-WORD-never-stored-9f8e7d"
    resp = await gateway.client.put("/api/v1/tenants/acme/installs/echo/secrets",
                                    json={"secrets": {"DB_PASSWORD": plaintext, "TOKEN": "tok-123456789"},
                                          "expires_at": "2099-01-01T00:00:00Z"},
                                    headers=gateway.admin)
    assert resp.status_code == 200
    assert plaintext not in resp.text
    assert resp.json() == {"keys": ["DB_PASSWORD", "TOKEN"], "expires_at": "2099-01-01T00:00:00Z",
                           "algorithm": "hpke-x25519-chacha20poly1305:v2"}  # new secrets are sealed with HPKE
    install = (await gateway.client.get("/api/v1/tenants/acme/installs/echo", headers=gateway.admin)).json()
    assert install["secrets"] == {"keys": ["DB_PASSWORD", "TOKEN"], "expires_at": "2099-01-01T00:00:00Z"}

    database = Path(gateway.settings.registry_database)
    on_disk = b"".join(p.read_bytes() for p in database.parent.glob("registry.sqlite3*"))
    assert plaintext.encode() not in on_disk
    assert b"tok-123456789" not in on_disk
    with sqlite3.connect(database) as conn:
        (stored,) = conn.execute("SELECT secret_envelope_json FROM installs").fetchone()
    envelope = json.loads(stored)
    assert sealing.open_envelope(envelope, gateway.private_key, tenant_id="acme", extension_id="echo") == {
        "DB_PASSWORD": plaintext, "TOKEN": "tok-123456789"}

    assert (await gateway.client.delete("/api/v1/tenants/acme/installs/echo/secrets",
                                        headers=gateway.admin)).status_code == 204
    install = (await gateway.client.get("/api/v1/tenants/acme/installs/echo", headers=gateway.admin)).json()
    assert install["secrets"] is None


async def test_secrets_need_the_runner_key(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(runner_secrets_public_key=None)
    await gateway.register(await gateway.publish("v1"))
    await gateway.tenant("acme")
    await gateway.install("acme")
    resp = await gateway.client.put("/api/v1/tenants/acme/installs/echo/secrets", json={"secrets": {"A": "b"}},
                                    headers=gateway.admin)
    assert (resp.status_code, resp.json()["error"]) == (503, "secrets_unavailable")


async def test_admin_credentials(installed: tuple[Gateway, Tenant]) -> None:
    gateway, member = installed
    resp = await gateway.client.post("/api/v1/tenants", json={"name": "x"})
    assert resp.status_code == 401
    resp = await gateway.client.post("/api/v1/tenants", json={"name": "x"}, headers={"authorization": "Bearer wrong"})
    assert resp.status_code == 401
    resp = await gateway.client.post("/api/v1/tenants", json={"name": "x"}, headers=member.auth)
    assert (resp.status_code, resp.json()["error"]) == (403, "admin_token_required")
    resp = await gateway.client.put("/api/v1/tenants/acme/installs/echo/config", json={"config": {}},
                                    headers=member.auth)
    assert (resp.status_code, resp.json()["permission"]) == (403, "extension:admin")


async def test_tenant_admin_manages_only_their_tenant(installed: tuple[Gateway, Tenant]) -> None:
    gateway, member = installed
    admin = await gateway.user("acme", roles=["admin"], email="boss@example.com")
    body = await gateway.client.put("/api/v1/tenants/acme/installs/echo/config", json={"config": {"K": "v"}},
                                    headers=admin.auth)
    assert body.status_code == 200
    minted = await gateway.client.post(f"/api/v1/users/{member.user_id}/tokens", json={}, headers=admin.auth)
    assert minted.status_code == 201
    await gateway.tenant("globex", email="g@example.com")
    resp = await gateway.client.get("/api/v1/tenants/globex/installs", headers=admin.auth)
    assert (resp.status_code, resp.json()["error"]) == (404, "tenant_not_found")


async def test_revoked_token_stops_working(installed: tuple[Gateway, Tenant]) -> None:
    gateway, member = installed
    me = (await gateway.client.get("/api/v1/me", headers=member.auth)).json()
    assert me["id"] == member.user_id
    found = await gateway.client.post(f"/api/v1/users/{member.user_id}/tokens", json={}, headers=gateway.admin)
    token_id = found.json()["id"]
    revoked = await gateway.client.delete(f"/api/v1/tokens/{token_id}", headers=gateway.admin)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"]
    resp = await gateway.client.get("/api/v1/me", headers={"authorization": f"Bearer {found.json()['token']}"})
    assert (resp.status_code, resp.json()["error"]) == (401, "invalid_token")
    assert (await gateway.client.get("/api/v1/me", headers=member.auth)).status_code == 200
