"""Versions, rollback and consent (issue 20, parts 1 and 2): the registry's history on both backends, and the
admin API over a served gateway whose runner records which bundle each call ran."""

from __future__ import annotations

from typing import Any

import pytest

import bundles
from gateway_quart import RecordConflict
from gateway_quart._rollout import capability_diff, previous_version
from gateway_quart.registry import HistoryEntry, SqlRegistry, Version
from tests._redis import RedisServer

from .conftest import Gateway, GatewayFactory, Tenant

# -- the registry, on SQLite and PostgreSQL --------------------------------------------------------------------

async def _register(registry: SqlRegistry, version: str, content_hash: str) -> Version:
    _, record, _ = await registry.register_version(
        extension_id="echo", name="echo", publisher="Example", version=version, content_hash=content_hash,
        manifest_json="{}", signature_status="unsigned",
    )
    return record


async def test_history_pending_and_versions_by_string(registry: SqlRegistry) -> None:
    await registry.create_tenant("acme", "Acme")
    v1 = await _register(registry, "1.0.0", "a" * 64)
    v2 = await _register(registry, "1.1.0", "b" * 64)
    v2b = await _register(registry, "1.1.0", "c" * 64)  # the same version string, rebuilt
    assert [v.id for v in await registry.list_versions("echo", version="1.1.0")] == [v2.id, v2b.id]
    assert await registry.list_versions("echo", version="9.9.9") == []

    install = await registry.create_install(tenant_id="acme", extension_id="echo", version_id=v1.id,
                                            granted_capabilities=["cap:http.fetch"], config={}, actor="u1")
    assert (install.pending_version, install.pending_since) == (None, None)

    held = await registry.set_pending_version("acme", "echo", v2.id)
    assert held.version.id == v1.id
    assert held.pending_version is not None
    assert held.pending_version.id == v2.id
    assert held.pending_since is not None
    replaced = await registry.set_pending_version("acme", "echo", v2b.id)  # a newer upgrade replaces it
    assert replaced.pending_version is not None
    assert replaced.pending_version.id == v2b.id
    assert (await registry.find_active_install("acme", "echo")).pending_version.id == v2b.id  # type: ignore[union-attr]

    moved = await registry.change_install_version(
        "acme", "echo", version_id=v2b.id, expected_version_id=v1.id, granted_capabilities=["cap:http.fetch"],
        clear_pending=True, action="consent", actor="u2", reason="approved",
    )
    assert moved.version.id == v2b.id
    assert (moved.pending_version, moved.pending_since) == (None, None)
    with pytest.raises(RecordConflict):  # another change won: the install is no longer at v1
        await registry.change_install_version(
            "acme", "echo", version_id=v2.id, expected_version_id=v1.id, granted_capabilities=[],
            clear_pending=False, action="upgrade", actor=None, reason="",
        )
    kept = await registry.set_pending_version("acme", "echo", v2.id)
    canary = await registry.change_install_version(
        "acme", "echo", version_id=v1.id, expected_version_id=v2b.id, granted_capabilities=[],
        clear_pending=False, action="canary_rollback", actor="canary", reason="error rate 31% > 5%",
    )
    assert canary.pending_version == kept.pending_version  # a canary leaves a held upgrade alone

    history = await registry.list_install_history("acme", "echo", limit=10)
    assert [(h.action, h.from_version and h.from_version.id, h.to_version.id, h.actor, h.reason) for h in history] == [
        ("canary_rollback", v2b.id, v1.id, "canary", "error rate 31% > 5%"),
        ("consent", v1.id, v2b.id, "u2", "approved"),
        ("install", None, v1.id, "u1", ""),
    ]
    assert len(await registry.list_install_history("acme", "echo", limit=1)) == 1


# -- the diff and the rollback walk (pure) ----------------------------------------------------------------------

def _manifest(**overrides: Any) -> bundles.Manifest:
    data: dict[str, Any] = {"name": "x", "version": "1.0.0", "capabilities": ["cap:http.fetch"],
                            "egress": ["api.example.com"], "secrets": ["API_KEY"]}
    data.update(overrides)
    return bundles.parse_manifest(data)


def test_capability_diff_names_what_is_added_and_removed() -> None:
    old = _manifest()
    diff = capability_diff(old, _manifest(capabilities=["cap:http.fetch", "cap:storage.kv", "cap:log.emit"],
                                          egress=["API.example.com", "*.cdn.example.net:8443"],
                                          secrets=["DB_PASSWORD"]))
    assert diff.to_json() == {
        "requires_consent": True,
        "capabilities": {"added": ["cap:log.emit", "cap:storage.kv"], "removed": []},
        "egress": {"added": ["*.cdn.example.net:8443"], "removed": []},  # the hosts are compared lower-cased
        "secrets": {"added": ["DB_PASSWORD"], "removed": ["API_KEY"]},
    }
    # Asking for less, or only for an always-granted capability, needs nobody's consent.
    assert not capability_diff(old, _manifest(capabilities=["cap:log.emit"], egress=None, secrets=[]))\
        .requires_consent
    assert capability_diff(old, _manifest(egress=["api.example.com", "new.example.com"])).added_egress == (
        "new.example.com",)
    assert capability_diff(old, old).to_json()["requires_consent"] is False


def _v(name: str) -> Version:
    return Version(name, "echo", name, name * 4, "{}", "unsigned", "t")


def _h(action: str, old: str | None, new: str) -> HistoryEntry:
    return HistoryEntry(0, "acme", "echo", None if old is None else _v(old), _v(new), action, None, "", "t")


def test_previous_version_keeps_going_back_past_rollbacks() -> None:
    # newest first: install v1, upgrade v2, upgrade v3
    history = [_h("upgrade", "2", "3"), _h("upgrade", "1", "2"), _h("install", None, "1")]
    assert previous_version(history).id == "2"  # type: ignore[union-attr]
    history = [_h("rollback", "3", "2"), *history]
    assert previous_version(history).id == "1"  # type: ignore[union-attr]
    history = [_h("rollback", "2", "1"), *history]
    assert previous_version(history) is None  # the install row: nothing left to undo
    # A row recorded for its reason only (no version change) is no step back.
    assert previous_version([_h("canary_rollback", "2", "2"), _h("upgrade", "1", "2")]).id == "1"  # type: ignore[union-attr]


# -- the admin API, with calls served through the gateway ------------------------------------------------------

async def _setup(gateway: Gateway) -> tuple[Tenant, Tenant]:
    """Versions 1.0.0, 1.1.0 (a new egress host) and 1.2.0 (asks for less) of echo; acme with a member and an
    admin user; echo 1.0.0 installed by the admin user."""
    await gateway.register(await gateway.publish("v1", version="1.0.0", egress=["api.example.com"]))
    await gateway.register(await gateway.publish("v2", version="1.1.0",
                                                 egress=["api.example.com", "hooks.example.net"]))
    await gateway.register(await gateway.publish("v3", version="1.2.0", egress=["api.example.com"],
                                                 capabilities=["cap:http.fetch", "cap:secrets.get"]))
    member = await gateway.tenant("acme")
    admin = await gateway.user("acme", roles=["admin"], email="boss@example.com")
    resp = await gateway.client.post("/api/v1/tenants/acme/installs", headers=admin.auth, json={
        "extension_id": "echo", "version": "1.0.0", "granted_capabilities": ["cap:http.fetch", "cap:storage.kv"]})
    assert resp.status_code == 201, resp.text
    assert resp.json()["content_hash"] == gateway.bundles["v1"]
    return member, admin


async def _served_by(gateway: Gateway, member: Tenant) -> str:
    """The bundle the runner was asked to run for a call of the member's through the gateway."""
    resp = await gateway.client.get("/api/ext/echo/items", headers=member.auth)
    assert resp.status_code == 200, resp.text
    served: str = gateway.runner.calls[-1]["body"]["context"]["content_hash"]
    return served


async def _post(gateway: Gateway, who: Tenant, action: str, body: Any = None, *, expect: int) -> Any:
    resp = await gateway.client.post(f"/api/v1/tenants/acme/installs/echo/{action}", headers=who.auth,
                                     json=body or {})
    assert resp.status_code == expect, resp.text
    return resp.json()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_upgrade_asking_for_a_new_egress_host_waits_for_consent(
    make_gateway: GatewayFactory, request: pytest.FixtureRequest, backend: str
) -> None:
    overrides = {"registry_database": request.getfixturevalue("postgres_url")} if backend == "postgresql" else {}
    gateway = await make_gateway(**overrides)
    member, admin = await _setup(gateway)
    assert await _served_by(gateway, member) == gateway.bundles["v1"]

    held = await _post(gateway, admin, "upgrade", {"version": "1.1.0"}, expect=202)
    assert held["status"] == "pending_consent"
    assert held["diff"] == {"requires_consent": True, "capabilities": {"added": [], "removed": []},
                            "egress": {"added": ["hooks.example.net"], "removed": []},
                            "secrets": {"added": [], "removed": []}}
    assert held["pending"]["content_hash"] == gateway.bundles["v2"]
    assert held["install"]["version"] == "1.0.0"
    assert held["install"]["pending"]["version"] == "1.1.0"
    # Until a tenant admin consents, every call still runs the old version.
    assert await _served_by(gateway, member) == gateway.bundles["v1"]
    shown = (await gateway.client.get("/api/v1/tenants/acme/installs/echo", headers=admin.auth)).json()
    assert (shown["version"], shown["pending"]["content_hash"]) == ("1.0.0", gateway.bundles["v2"])

    approved = await _post(gateway, admin, "consent", {"version": "1.1.0", "reason": "hooks are ours"}, expect=200)
    assert (approved["version"], approved["pending"]) == ("1.1.0", None)
    assert approved["granted_capabilities"] == ["cap:http.fetch", "cap:storage.kv"]
    assert await _served_by(gateway, member) == gateway.bundles["v2"]
    again = await _post(gateway, admin, "consent", expect=409)
    assert again["error"] == "no_pending_upgrade"

    history = (await gateway.client.get("/api/v1/tenants/acme/installs/echo/history", headers=admin.auth)).json()
    assert [(e["action"], e["from"] and e["from"]["version"], e["to"]["version"], e["actor"], e["reason"])
            for e in history["entries"]] == [("consent", "1.0.0", "1.1.0", admin.user_id, "hooks are ours"),
                                             ("install", None, "1.0.0", admin.user_id, "")]


async def test_upgrade_asking_for_nothing_new_proceeds_and_rollback_restores(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway()
    member, admin = await _setup(gateway)
    # 1.0.0 -> 1.2.0 drops cap:storage.kv and asks for nothing new: upgraded at once, the dropped grant goes.
    upgraded = await _post(gateway, admin, "upgrade", {"content_hash": gateway.bundles["v3"]}, expect=200)
    assert (upgraded["version"], upgraded["pending"]) == ("1.2.0", None)
    assert upgraded["granted_capabilities"] == ["cap:http.fetch"]
    assert await _served_by(gateway, member) == gateway.bundles["v3"]

    # A held upgrade, then one call to roll back: the previous version serves again, the held one is withdrawn.
    await _post(gateway, admin, "upgrade", {"version": "1.1.0"}, expect=202)
    restored = await _post(gateway, admin, "rollback", {"reason": "1.2.0 breaks invoices"}, expect=200)
    assert (restored["version"], restored["pending"]) == ("1.0.0", None)
    assert await _served_by(gateway, member) == gateway.bundles["v1"]
    nothing = await _post(gateway, admin, "rollback", expect=409)
    assert nothing["error"] == "no_previous_version"

    # Back up (through consent), forward again, and two rollbacks walk the history back step by step.
    await _post(gateway, admin, "upgrade", {"version": "1.1.0"}, expect=202)
    await _post(gateway, admin, "consent", expect=200)
    await _post(gateway, admin, "upgrade", {"version": "1.2.0"}, expect=200)
    assert (await _post(gateway, admin, "rollback", expect=200))["version"] == "1.1.0"
    assert await _served_by(gateway, member) == gateway.bundles["v2"]
    assert (await _post(gateway, admin, "rollback", expect=200))["version"] == "1.0.0"

    resp = await gateway.client.get("/api/v1/tenants/acme/installs/echo/history", headers=gateway.admin)
    assert [e["action"] for e in resp.json()["entries"]] == [
        "rollback", "rollback", "upgrade", "consent", "rollback", "upgrade", "install"]
    assert resp.json()["entries"][4]["reason"] == "1.2.0 breaks invoices"
    limited = await gateway.client.get("/api/v1/tenants/acme/installs/echo/history?limit=2", headers=admin.auth)
    assert len(limited.json()["entries"]) == 2
    bad = await gateway.client.get("/api/v1/tenants/acme/installs/echo/history?limit=0", headers=admin.auth)
    assert (bad.status_code, bad.json()["fields"]) == (400, {"limit": "must be an integer in 1..1000"})


async def test_a_newer_upgrade_replaces_a_pending_one(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway()
    await gateway.register(await gateway.publish("v4", version="1.3.0", egress=["api.example.com", "x.example"]))
    _, admin = await _setup(gateway)
    await _post(gateway, admin, "upgrade", {"version": "1.1.0"}, expect=202)
    held = await _post(gateway, admin, "upgrade", {"version": "1.3.0"}, expect=202)
    assert held["install"]["pending"]["version"] == "1.3.0"
    # Consent names what the admin reviewed: the replaced version is refused, the pending one stays.
    stale = await _post(gateway, admin, "consent", {"version": "1.1.0"}, expect=409)
    assert (stale["error"], stale["pending"]["version"]) == ("pending_changed", "1.3.0")
    # Asking for the installed version withdraws the held upgrade.
    unchanged = await _post(gateway, admin, "upgrade", {"version": "1.0.0"}, expect=200)
    assert (unchanged["version"], unchanged["pending"]) == ("1.0.0", None)


async def test_only_the_tenants_own_admins_decide(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway()
    member, admin = await _setup(gateway)
    await _post(gateway, admin, "upgrade", {"version": "1.1.0"}, expect=202)
    other = await gateway.tenant("globex", roles=["admin"], email="eve@example.com")
    for action in ("consent", "rollback", "upgrade"):
        refused = await _post(gateway, other, action, {"version": "1.1.0"} if action == "upgrade" else None,
                              expect=404)
        assert refused["error"] == "tenant_not_found"  # another tenant's install looks like no tenant at all
        refused = await _post(gateway, member, action, {"version": "1.1.0"} if action == "upgrade" else None,
                              expect=403)
        assert refused["permission"] == "extension:admin"
    resp = await gateway.client.get("/api/v1/tenants/acme/installs/echo/history", headers=other.auth)
    assert resp.status_code == 404
    # Nothing moved: the install still serves 1.0.0 with 1.1.0 held.
    shown = (await gateway.client.get("/api/v1/tenants/acme/installs/echo", headers=admin.auth)).json()
    assert (shown["version"], shown["pending"]["version"]) == ("1.0.0", "1.1.0")
    # The other tenant cannot see the diff of an extension it has not installed.
    resp = await gateway.client.get("/api/v1/extensions/echo/diff?from=1.0.0&to=1.1.0", headers=other.auth)
    assert (resp.status_code, resp.json()["error"]) == (404, "extension_not_found")


async def test_diff_between_versions(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway()
    member, admin = await _setup(gateway)
    resp = await gateway.client.get(f"/api/v1/extensions/echo/diff?from=1.1.0&to={gateway.bundles['v3']}",
                                    headers=admin.auth)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "extension_id": "echo",
        "from": {"version_id": resp.json()["from"]["version_id"], "version": "1.1.0",
                 "content_hash": gateway.bundles["v2"]},
        "to": {"version_id": resp.json()["to"]["version_id"], "version": "1.2.0",
               "content_hash": gateway.bundles["v3"]},
        "diff": {"requires_consent": False, "capabilities": {"added": [], "removed": ["cap:storage.kv"]},
                 "egress": {"added": [], "removed": ["hooks.example.net"]}, "secrets": {"added": [], "removed": []}},
    }
    by_id = await gateway.client.get(
        f"/api/v1/extensions/echo/diff?from={resp.json()['to']['version_id']}&to=1.1.0", headers=gateway.admin)
    assert by_id.json()["diff"]["requires_consent"] is True
    missing = await gateway.client.get("/api/v1/extensions/echo/diff?from=1.0.0", headers=admin.auth)
    assert (missing.status_code, list(missing.json()["fields"])) == (400, ["to"])
    unknown = await gateway.client.get("/api/v1/extensions/echo/diff?from=1.0.0&to=7.0.0", headers=admin.auth)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "version_not_found")
    assert (await gateway.client.get("/api/v1/extensions/echo/diff?from=1.0.0&to=1.1.0",
                                     headers=member.auth)).status_code == 403


async def test_install_and_upgrade_by_version_string_refuse_unknown_ones(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway()
    _, admin = await _setup(gateway)
    both = await _post(gateway, admin, "upgrade", {"version": "1.1.0", "content_hash": gateway.bundles["v2"]},
                       expect=400)
    assert both["fields"] == {"version": "give one of version_id, content_hash or version"}
    unknown = await _post(gateway, admin, "upgrade", {"version": "3.0.0"}, expect=404)
    assert unknown["error"] == "version_not_found"
    none = await _post(gateway, admin, "upgrade", {}, expect=400)
    assert none["fields"] == {"version_id": "version_id, content_hash or version is required"}


async def test_a_version_change_on_one_gateway_is_served_by_the_other_at_once(
    make_gateway: GatewayFactory, postgres_url: str, redis_server: RedisServer
) -> None:
    """Two gateways sharing PostgreSQL and Redis, the second having cached the install for minutes: an upgrade and
    a rollback through the first are served by the second on its very next request."""
    settings = {"registry_database": postgres_url, "redis_url": redis_server.url, "auth_cache_ttl_s": 300.0}
    first = await make_gateway(**settings)
    second = await make_gateway(**settings)
    member, admin = await _setup(first)
    assert await _served_by(second, member) == first.bundles["v1"]  # cached now

    await _post(first, admin, "upgrade", {"version": "1.2.0"}, expect=200)
    assert await _served_by(second, member) == first.bundles["v3"]
    await _post(first, admin, "rollback", expect=200)
    assert await _served_by(second, member) == first.bundles["v1"]
