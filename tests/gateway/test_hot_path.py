"""The proxy's hot path: the short-lived lookup cache (and what it means across processes), the audit row
written once per call, the ``GATEWAY_AUTH_CACHE_TTL_S`` setting."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from gateway_quart import SettingsError, load_settings
from gateway_quart.registry import CachedRegistry, SqliteRegistry

from ._helpers import RunnerReply
from .conftest import Gateway, GatewayFactory, Tenant


async def _seed(registry: SqliteRegistry) -> tuple[str, str]:
    """Tenant ``acme`` with one user, one token (hash ``aa…``) and an install of ``echo``; returns the token
    id and the version id."""
    await registry.create_tenant("acme", "Acme")
    user = await registry.create_user(tenant_id="acme", email="a@example.com", name="A", user_type="internal",
                                      roles=["member"], client_name=None, client_id=None)
    token = await registry.create_token(user_id=user.id, token_sha256="a" * 64, name="t", expires_at=None)
    _, version, _ = await registry.register_version(
        extension_id="echo", name="echo", publisher="Example", version="1.0.0", content_hash="b" * 64,
        manifest_json="{}", signature_status="unsigned")
    await registry.create_install(tenant_id="acme", extension_id="echo", version_id=version.id,
                                  granted_capabilities=[], config={})
    return token.id, version.id


async def test_writes_through_the_cache_apply_at_once(tmp_path: Path) -> None:
    cached = CachedRegistry(await SqliteRegistry.open(str(tmp_path / "r.sqlite3")), ttl_s=60)
    assert isinstance(cached.inner, SqliteRegistry)
    token_id, _ = await _seed(cached.inner)
    found = await cached.find_token("a" * 64)
    assert found is not None
    assert found[0].revoked_at is None
    assert (await cached.find_token_by_id(token_id)) is not None
    assert (await cached.find_active_install("acme", "echo")) is not None

    await cached.revoke_token(token_id)
    by_hash, by_id = await cached.find_token("a" * 64), await cached.find_token_by_id(token_id)
    assert by_hash is not None
    assert by_hash[0].revoked_at is not None
    assert by_id is not None
    assert by_id[0].revoked_at is not None

    await cached.update_install("acme", "echo", config={"MODE": "x"})
    install = await cached.find_active_install("acme", "echo")
    assert install is not None
    assert dict(install.config) == {"MODE": "x"}
    await cached.update_install("acme", "echo", enabled=False)
    assert await cached.find_active_install("acme", "echo") is None
    await cached.update_install("acme", "echo", enabled=True)
    assert await cached.find_active_install("acme", "echo") is not None
    await cached.delete_install("acme", "echo")
    assert await cached.find_active_install("acme", "echo") is None
    assert await cached.find_token("f" * 64) is None  # misses are not kept
    await cached.aclose()


async def test_another_process_sees_changes_within_the_ttl(tmp_path: Path) -> None:
    path = str(tmp_path / "r.sqlite3")
    other = await SqliteRegistry.open(path)  # a second gateway process on the same database
    token_id, _ = await _seed(other)
    cached = CachedRegistry(await SqliteRegistry.open(path), ttl_s=0.3)
    assert (await cached.find_token("a" * 64)) is not None
    assert (await cached.find_active_install("acme", "echo")) is not None

    await other.revoke_token(token_id)
    await other.update_install("acme", "echo", enabled=False)
    stale = await cached.find_token("a" * 64)
    assert stale is not None
    assert stale[0].revoked_at is None
    await trio.sleep(0.5)
    fresh = await cached.find_token("a" * 64)
    assert fresh is not None
    assert fresh[0].revoked_at is not None
    assert await cached.find_active_install("acme", "echo") is None
    await cached.aclose()
    await other.aclose()


def test_auth_cache_ttl_setting() -> None:
    base = {"RUNNER_BASE_URL": "http://runner:8080"}
    assert load_settings(base).auth_cache_ttl_s == 2.0
    assert load_settings({**base, "GATEWAY_AUTH_CACHE_TTL_S": "0"}).auth_cache_ttl_s == 0.0
    assert load_settings({**base, "GATEWAY_AUTH_CACHE_TTL_S": "4.5"}).auth_cache_ttl_s == 4.5
    for bad in ("-1", "301", "soon"):
        with pytest.raises(SettingsError) as err:
            load_settings({**base, "GATEWAY_AUTH_CACHE_TTL_S": bad})
        assert err.value.setting == "GATEWAY_AUTH_CACHE_TTL_S"


async def _audit(gateway: Gateway) -> list[dict[str, object]]:
    resp = await gateway.client.get("/api/v1/tenants/acme/audit", headers=gateway.admin)
    assert resp.status_code == 200
    entries: list[dict[str, object]] = resp.json()["entries"]
    return entries


async def test_one_audit_row_per_call_even_when_the_client_goes_away(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    ok = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert ok.status_code == 200
    [row] = await _audit(gateway)
    assert (row["status"], row["method"], row["path"]) == (200, "GET", "/items")
    assert row["request_id"] == ok.headers["x-request-id"]
    assert row["user_id"] == tenant.user_id
    assert row["extension_id"] == "echo"

    gateway.runner.reply = lambda _: RunnerReply(delay_s=30)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=0.5) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await impatient.get("/api/ext/echo/items/9", headers=tenant.auth)
    with trio.fail_after(10):  # the gateway notices the closed connection, cancels the call, records it
        while len(entries := await _audit(gateway)) < 2:  # noqa: ASYNC110 - polling another server
            await trio.sleep(0.05)
    assert (entries[0]["status"], entries[0]["path"]) == (499, "/items/9")


async def test_no_cache_when_the_ttl_is_zero(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(auth_cache_ttl_s=0)
    await gateway.register(await gateway.publish("v1"))
    tenant = await gateway.tenant("acme")
    await gateway.install("acme")
    assert (await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)).status_code == 200
    other = await SqliteRegistry.open(gateway.settings.registry_database)  # another process's write
    await other.update_install("acme", "echo", enabled=False)
    await other.aclose()
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 404
    assert resp.json()["error"] == "not_installed"
