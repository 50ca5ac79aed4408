"""Canary rollouts: a real runner running real WAT components behind a real gateway, requests through /api/ext.

Versions of one extension (``canary-ext``): 1.0.0 is ``echo`` (200 always), 2.0.0 is ``trap`` (traps on a request
without a body, 502 through the gateway; 204 with a body), 2.0.1 is ``echo`` again under a new version (healthy),
3.0.0 is ``spin`` (never answers: every call times out), 4.0.0 is ``echo`` asking for ``cap:http.fetch`` too.
A POST with a body therefore says which version served it: 200 the old one, 204 the trap one.

Evaluation is driven by ``CanaryController.evaluate_now`` with an explicit time (the gateways here run with
``GATEWAY_CANARY_INTERVAL_S=0``), except in the test of the background evaluator, which waits for it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from quart_trio import QuartTrio

from gateway_quart import RecordConflict, RecordNotFound, Settings, SettingsError, create_app, load_settings
from gateway_quart._canary import (
    ARM_NEW,
    ArmStats,
    CanaryController,
    choose_version,
    judge,
    request_key,
)
from gateway_quart._canary import (
    ActiveCanary as Active,
)
from gateway_quart._state import STATE_KEY, GatewayState
from gateway_quart.registry import (
    CANARY_PROMOTED,
    CANARY_ROLLED_BACK,
    Canary,
    CanaryBudget,
    Install,
    SqlRegistry,
    Version,
    open_registry,
)
from tests._redis import RedisServer
from tests.gateway._helpers import start_server
from tests.guests.wat import load_wat
from tests.runner.http.conftest import (  # noqa: F401 - fixtures
    TOKEN,
    RunnerHandle,
    Shared,
    runner_settings,
    shared,
    start_runner,
)

ADMIN = "admin-token-canary-0123456789"
EXT = "canary-ext"
ADMIN_AUTH = {"authorization": f"Bearer {ADMIN}"}
ENDPOINTS = [{"method": "GET", "path": "/ping", "handler": "ping"}, {"method": "POST", "path": "/ping",
                                                                     "handler": "ping"}]
VERSIONS = {"1.0.0": "echo", "2.0.0": "trap", "2.0.1": "echo", "3.0.0": "spin", "4.0.0": "echo"}
ASKS_MORE = {"4.0.0": ["cap:http.fetch"]}


@dataclass
class Stack:
    url: str
    client: httpx.AsyncClient
    app: QuartTrio
    runner: RunnerHandle
    tmp: Path
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> GatewayState:
        st: GatewayState = self.app.extensions[STATE_KEY]
        return st

    @property
    def canaries(self) -> CanaryController:
        assert self.state.canaries is not None
        return self.state.canaries

    async def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                   expect: int | None = None) -> Any:
        headers = ADMIN_AUTH if token is None else {"authorization": f"Bearer {token}"}
        resp = await self.client.request(method, path, json=body, headers=headers)
        if expect is not None:
            assert resp.status_code == expect, resp.text
        return resp.json() if resp.content else None

    async def publish(self, version: str) -> str:
        src = self.tmp / f"src-{version}"
        src.mkdir(parents=True)
        manifest = {"name": "canary", "publisher": "tests", "version": version, "runtime": "wasm-js@1",
                    "entry": "entry.wasm", "capabilities": ASKS_MORE.get(version, []), "api": {"endpoints": ENDPOINTS}}
        (src / "manifest.json").write_text(json.dumps(manifest))
        (src / "entry.wasm").write_bytes(load_wat(VERSIONS[version]))
        return await self.runner.publish_dir(src)

    async def user(self, tenant: str, role: str = "member", email: str = "ann@example.test") -> str:
        user = await self.call("POST", f"/api/v1/tenants/{tenant}/users",
                               {"email": email, "name": "Ann", "roles": [role]}, expect=201)
        token = await self.call("POST", f"/api/v1/users/{user['id']}/tokens", {"name": "t"}, expect=201)
        return str(token["token"])

    async def tenant(self, tenant: str) -> str:
        """A tenant with the extension installed at 1.0.0; returns a member's token."""
        await self.call("POST", "/api/v1/tenants", {"id": tenant, "name": tenant}, expect=201)
        await self.call("POST", f"/api/v1/tenants/{tenant}/installs",
                        {"extension_id": EXT, "content_hash": self.hashes["1.0.0"]}, expect=201)
        self.tokens[tenant] = await self.user(tenant)
        return self.tokens[tenant]

    hashes: dict[str, str] = field(default_factory=dict)

    async def ping(self, tenant: str, *, body: bool, token: str | None = None) -> int:
        """One call through the gateway: a POST with a body, or a GET without one; returns the status."""
        headers = {"authorization": f"Bearer {token or self.tokens[tenant]}"}
        if body:
            resp = await self.client.post(f"/api/ext/{EXT}/ping", content=b"hello", headers=headers)
        else:
            resp = await self.client.get(f"/api/ext/{EXT}/ping", headers=headers)
        return resp.status_code

    async def history(self, tenant: str) -> list[tuple[str, str, str, str]]:
        """The install's version changes, newest first: (action, from, to, reason)."""
        entries = (await self.call("GET", f"/api/v1/tenants/{tenant}/installs/{EXT}/history", expect=200))["entries"]
        return [(e["action"], (e["from"] or {}).get("version", "-"), e["to"]["version"], e["reason"])
                for e in entries]

    async def installed_version(self, tenant: str) -> str:
        return str((await self.call("GET", f"/api/v1/tenants/{tenant}/installs/{EXT}", expect=200))["version"])


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def make_stack(nursery: trio.Nursery, runner_settings: Callable[..., Any],  # noqa: F811
                     shared: Shared, tmp_path: Path) -> AsyncIterator[StackFactory]:  # noqa: F811
    stacks: list[tuple[Stack, Any]] = []

    async def factory(**overrides: Any) -> Stack:
        runner = await start_runner(nursery, runner_settings(var_dir=tmp_path / f"var{len(stacks)}"), shared)
        settings = Settings(
            runner_base_urls=(runner.url,), runner_service_token=TOKEN,
            registry_database=str(tmp_path / f"registry{len(stacks)}.sqlite3"),
            bundle_store_base=runner.settings.resolved_store_base, admin_token=ADMIN, timeout_ms=60_000,
            canary_interval_s=0, rate_limit_rps=1000, rate_limit_burst=1000,
        )
        app = create_app(replace(settings, **overrides))
        server = await start_server(nursery, app)
        stack = Stack(server.url, httpx.AsyncClient(base_url=server.url, timeout=90), app, runner,
                      tmp_path / f"stack{len(stacks)}")
        stacks.append((stack, server))
        for version in VERSIONS:
            stack.hashes[version] = await stack.publish(version)
            await stack.call("POST", "/api/v1/extensions", {"content_hash": stack.hashes[version],
                                                            "extension_id": EXT})
        return stack

    yield factory
    for stack, server in stacks:
        await stack.client.aclose()
        with trio.fail_after(10):
            await server.close()
        await stack.runner.client.aclose()
        stack.runner.shutdown.set()


@pytest.fixture
async def stack(make_stack: StackFactory) -> Stack:
    return await make_stack()


def _after_window(canary: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(canary["ends_at"].replace("Z", "+00:00")) + timedelta(seconds=1)


async def test_a_version_failing_30_percent_is_rolled_back_within_its_window(stack: Stack) -> None:
    await stack.tenant("acme")
    canary = await stack.call("POST", f"/api/v1/extensions/{EXT}/canaries", {
        "to": "2.0.0", "tenant": "acme", "percent": 100, "window_s": 3600,
        "budget": {"max_error_rate": 0.05, "min_requests": 20}}, expect=201)
    assert (canary["state"], canary["from"]["version"], canary["to"]["version"]) == ("running", "1.0.0", "2.0.0")

    # 3 of every 10 requests come without a body: the new version traps on them.
    statuses = [await stack.ping("acme", body=i % 10 >= 3) for i in range(30)]
    assert (statuses.count(502), statuses.count(204)) == (9, 21), statuses

    decided = await stack.canaries.evaluate_now(stack.state)
    assert [c.id for c in decided] == [canary["id"]]
    seen = await stack.call("GET", f"/api/v1/extensions/{EXT}/canaries/{canary['id']}", expect=200)
    assert seen["state"] == "rolled_back"
    assert seen["reason"] == "error rate 0.30 > 0.05 over 30 requests"
    assert seen["decided_at"] < seen["ends_at"], "decided within the window"
    assert (seen["stats"]["new"]["requests"], seen["stats"]["new"]["errors"]) == (30, 9)
    # Every request is back on the old version, and the install never moved.
    assert await stack.ping("acme", body=False) == 200
    assert await stack.ping("acme", body=True) == 200
    assert await stack.installed_version("acme") == "1.0.0"
    # The install's history keeps the roll-back and why (a change to the version it already ran).
    assert (await stack.history("acme"))[0] == ("canary_rollback", "1.0.0", "1.0.0",
                                                "error rate 0.30 > 0.05 over 30 requests")


async def test_a_healthy_version_is_promoted_when_its_window_ends(stack: Stack) -> None:
    await stack.tenant("acme")
    canary = await stack.call("POST", f"/api/v1/extensions/{EXT}/canaries", {
        "to": stack.hashes["2.0.1"], "tenant": "acme", "percent": 100, "window_s": 600,
        "budget": {"min_requests": 5, "max_p99_ms": 60_000}}, expect=201)
    for _ in range(8):
        assert await stack.ping("acme", body=False) == 200

    assert await stack.canaries.evaluate_now(stack.state) == [], "the window is still open"
    running = await stack.call("GET", f"/api/v1/extensions/{EXT}/canaries/{canary['id']}", expect=200)
    assert (running["state"], running["stats"]["new"]["requests"], running["stats"]["old"]["requests"]) == (
        "running", 8, 0)

    decided = await stack.canaries.evaluate_now(stack.state, now=_after_window(canary))
    assert [c.state for c in decided] == [CANARY_PROMOTED]
    seen = await stack.call("GET", f"/api/v1/extensions/{EXT}/canaries/{canary['id']}", expect=200)
    assert seen["state"] == "promoted"
    assert seen["reason"].startswith("budget held over 8 requests in 600 s")
    assert await stack.installed_version("acme") == "2.0.1"
    assert await stack.ping("acme", body=False) == 200
    action, before, after, reason = (await stack.history("acme"))[0]
    assert (action, before, after, reason) == ("canary_promote", "1.0.0", "2.0.1", seen["reason"])
    # A later rollback returns to the version before the promotion.
    await stack.call("POST", f"/api/v1/tenants/acme/installs/{EXT}/rollback", {}, expect=200)
    assert await stack.installed_version("acme") == "1.0.0"


async def test_too_little_traffic_in_the_window_is_not_promoted(stack: Stack) -> None:
    await stack.tenant("acme")
    canary = await stack.call("POST", f"/api/v1/tenants/acme/installs/{EXT}/canary",
                              {"to": "2.0.1", "percent": 100, "window_s": 60}, expect=201)
    assert await stack.ping("acme", body=False) == 200
    decided = await stack.canaries.evaluate_now(stack.state, now=_after_window(canary))
    assert [c.state for c in decided] == [CANARY_ROLLED_BACK]
    assert decided[0].reason == "only 1 requests on the new version in 60 s (min_requests 20): not enough to promote"
    assert await stack.installed_version("acme") == "1.0.0"


async def test_a_version_that_times_out_is_rolled_back(make_stack: StackFactory) -> None:
    stack = await make_stack(timeout_ms=1000)
    await stack.tenant("acme")
    canary = await stack.call("POST", f"/api/v1/extensions/{EXT}/canaries", {
        "to": "3.0.0", "tenant": "acme", "percent": 100, "window_s": 600, "budget": {"min_requests": 4}},
        expect=201)
    assert [await stack.ping("acme", body=False) for _ in range(4)] == [504] * 4
    decided = await stack.canaries.evaluate_now(stack.state)
    assert [(c.id, c.state, c.reason) for c in decided] == [
        (canary["id"], CANARY_ROLLED_BACK, "timeout rate 1.00 > 0.05 over 4 requests")]
    assert decided[0].stats is not None
    assert (decided[0].stats["new"]["timeouts"], decided[0].stats["new"]["errors"]) == (4, 0)
    assert await stack.ping("acme", body=False) == 200


async def test_the_background_evaluator_rolls_back_and_promotes(make_stack: StackFactory) -> None:
    stack = await make_stack(canary_interval_s=0.2)
    await stack.tenant("acme")
    await stack.tenant("beta")
    failing = await stack.call("POST", f"/api/v1/extensions/{EXT}/canaries", {
        "to": "2.0.0", "tenant": "beta", "percent": 100, "window_s": 3600, "budget": {"min_requests": 10}},
        expect=201)
    healthy = await stack.call("POST", f"/api/v1/extensions/{EXT}/canaries", {
        "to": "2.0.1", "tenant": "acme", "percent": 100, "window_s": 2, "budget": {"min_requests": 3}},
        expect=201)
    for _ in range(10):
        await stack.ping("beta", body=False)
    for _ in range(3):
        assert await stack.ping("acme", body=False) == 200

    async def state_of(canary: dict[str, Any]) -> dict[str, Any]:
        with trio.fail_after(30):
            while True:
                seen: dict[str, Any] = await stack.call(
                    "GET", f"/api/v1/extensions/{EXT}/canaries/{canary['id']}", expect=200)
                if seen["state"] != "running":
                    return seen
                await trio.sleep(0.1)

    rolled_back = await state_of(failing)
    assert (rolled_back["state"], rolled_back["reason"]) == ("rolled_back", "error rate 1.00 > 0.05 over 10 requests")
    promoted = await state_of(healthy)
    assert promoted["state"] == "promoted"
    assert (await stack.installed_version("acme"), await stack.installed_version("beta")) == ("2.0.1", "1.0.0")


async def test_a_user_sees_one_version_and_the_share_follows_the_percentage(stack: Stack) -> None:
    await stack.tenant("acme")
    users = [await stack.user("acme", email=f"u{i}@example.test") for i in range(6)]
    me = [await stack.call("GET", "/api/v1/me", token=token, expect=200) for token in users]
    canary = await stack.call("POST", f"/api/v1/extensions/{EXT}/canaries", {
        "to": "2.0.0", "tenant": "acme", "percent": 50, "window_s": 600}, expect=201)
    active = stack.canaries.active(canary["id"])
    assert active is not None
    install = await stack.state.registry.get_install("acme", EXT)
    for token, user in zip(users, me, strict=True):
        expected = choose_version(active, install, request_key(user["id"], None, "unused")).version
        statuses = {await stack.ping("acme", body=True, token=token) for _ in range(3)}
        assert statuses == {204 if expected == "2.0.0" else 200}, (user["id"], statuses)
    stats = (await stack.call("GET", f"/api/v1/extensions/{EXT}/canaries/{canary['id']}"))["stats"]
    assert stats["new"]["requests"] + stats["old"]["requests"] == 18
    assert stats["new"]["requests"] % 3 == 0


async def test_a_tenant_list_canary_serves_those_tenants_the_new_version(stack: Stack) -> None:
    for tenant in ("acme", "beta", "gamma"):
        await stack.tenant(tenant)
    canary = await stack.call("POST", f"/api/v1/extensions/{EXT}/canaries", {
        "to": "2.0.0", "tenants": ["acme", "beta"], "window_s": 600, "budget": {"min_requests": 2}}, expect=201)
    assert (canary["tenant_id"], canary["tenants"], canary["percent"]) == (None, ["acme", "beta"], 100.0)
    assert [await stack.ping(t, body=True) for t in ("acme", "beta", "gamma", "acme")] == [204, 204, 200, 204]
    stats = (await stack.call("GET", f"/api/v1/extensions/{EXT}/canaries/{canary['id']}"))["stats"]
    assert (stats["new"]["requests"], stats["old"]["requests"]) == (3, 1)

    decided = await stack.canaries.evaluate_now(stack.state, now=_after_window(canary))
    assert [c.state for c in decided] == [CANARY_PROMOTED]
    versions = [await stack.installed_version(t) for t in ("acme", "beta", "gamma")]
    assert versions == ["2.0.0", "2.0.0", "1.0.0"]


async def test_who_may_start_see_and_cancel_a_canary(stack: Stack) -> None:
    member = await stack.tenant("acme")
    await stack.tenant("beta")
    acme_admin = await stack.user("acme", role="admin", email="boss@acme.test")
    beta_admin = await stack.user("beta", role="admin", email="boss@beta.test")
    start = {"to": "2.0.1", "percent": 10, "window_s": 600}

    refused = await stack.call("POST", f"/api/v1/tenants/acme/installs/{EXT}/canary", start, token=member,
                               expect=403)
    assert refused["error"] == "forbidden" or "permission" in refused
    other = await stack.call("POST", f"/api/v1/tenants/beta/installs/{EXT}/canary", start, token=acme_admin,
                             expect=404)
    assert other["error"] == "tenant_not_found"
    fleetwide = await stack.call("POST", f"/api/v1/extensions/{EXT}/canaries", {**start, "tenant": "acme"},
                                 token=acme_admin, expect=403)
    assert fleetwide["error"] == "admin_token_required"

    canary = await stack.call("POST", f"/api/v1/tenants/acme/installs/{EXT}/canary", start, token=acme_admin,
                              expect=201)
    assert canary["actor"].startswith("user:")
    path = f"/api/v1/extensions/{EXT}/canaries/{canary['id']}"
    assert (await stack.call("GET", path, token=acme_admin, expect=200))["percent"] == 10
    for token in (beta_admin, member):
        hidden = await stack.call("GET", path, token=token)
        assert hidden["error"] in ("canary_not_found", "forbidden"), hidden
    assert (await stack.call("GET", path, token=beta_admin, expect=404))["error"] == "canary_not_found"
    assert (await stack.call("POST", path + "/cancel", token=beta_admin, expect=404))["error"] == "canary_not_found"
    assert (await stack.call("GET", f"/api/v1/extensions/other/canaries/{canary['id']}", expect=404))[
        "error"] == "canary_not_found"

    again = await stack.call("POST", f"/api/v1/tenants/acme/installs/{EXT}/canary", start, token=acme_admin,
                             expect=409)
    assert again["error"] == "canary_running"
    cancelled = await stack.call("POST", path + "/cancel", token=acme_admin, expect=200)
    assert cancelled["state"] == "cancelled"
    assert cancelled["reason"].startswith("cancelled by user:")
    assert (await stack.call("POST", path + "/cancel", expect=409))["error"] == "canary_not_running"
    assert await stack.installed_version("acme") == "1.0.0"

    # A tenant-list canary is the operator's: a listed tenant's admin does not see it.
    listed = await stack.call("POST", f"/api/v1/extensions/{EXT}/canaries",
                              {"to": "2.0.1", "tenants": ["acme", "beta"]}, expect=201)
    await stack.call("GET", f"/api/v1/extensions/{EXT}/canaries/{listed['id']}", token=acme_admin, expect=404)

    # Lists: the operator sees all of the extension's canaries, newest first; a tenant admin their tenant's.
    every = (await stack.call("GET", f"/api/v1/extensions/{EXT}/canaries", expect=200))["canaries"]
    assert [c["id"] for c in every] == [listed["id"], canary["id"]]
    running = (await stack.call("GET", f"/api/v1/extensions/{EXT}/canaries?state=running", expect=200))["canaries"]
    assert [c["id"] for c in running] == [listed["id"]]
    mine = (await stack.call("GET", f"/api/v1/extensions/{EXT}/canaries", token=acme_admin, expect=200))["canaries"]
    assert [c["id"] for c in mine] == [canary["id"]]
    assert (await stack.call("GET", f"/api/v1/extensions/{EXT}/canaries", token=beta_admin, expect=200)) == {
        "canaries": []}
    await stack.call("GET", f"/api/v1/extensions/{EXT}/canaries", token=member, expect=403)
    bad = await stack.call("GET", f"/api/v1/extensions/{EXT}/canaries?state=done&limit=0", expect=400)
    assert set(bad["fields"]) == {"state", "limit"}


async def test_bad_canaries_are_refused_with_the_reason(stack: Stack) -> None:
    await stack.tenant("acme")
    await stack.call("POST", "/api/v1/tenants", {"id": "empty", "name": "empty"}, expect=201)
    url = f"/api/v1/extensions/{EXT}/canaries"
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"to": "2.0.1", "tenant": "acme", "percent": 0}, 400, "invalid_request"),
        ({"to": "2.0.1", "tenant": "acme", "percent": 101}, 400, "invalid_request"),
        ({"to": "2.0.1", "percent": 5}, 400, "invalid_request"),
        ({"to": "2.0.1", "tenant": "acme", "percent": 5, "tenants": ["acme"]}, 400, "invalid_request"),
        ({"to": "2.0.1", "tenants": ["acme", "acme"]}, 400, "invalid_request"),
        ({"to": "2.0.1", "tenants": ["../x"]}, 400, "invalid_request"),
        ({"to": "2.0.1", "tenant": "acme", "percent": 5, "budget": {"max_error_rate": 2}}, 400, "invalid_request"),
        ({"to": "2.0.1", "tenant": "acme", "percent": 5, "budget": "strict"}, 400, "invalid_request"),
        ({"to": "9.9.9", "tenant": "acme", "percent": 5}, 404, "version_not_found"),
        ({"to": "sha256:" + "0" * 64, "tenant": "acme", "percent": 5}, 404, "version_not_found"),
        ({"to": "2.0.1", "tenant": "empty", "percent": 5}, 404, "not_installed"),
        ({"to": "1.0.0", "tenant": "acme", "percent": 5}, 409, "canary_same_version"),
        ({"to": "4.0.0", "tenant": "acme", "percent": 5}, 409, "consent_required"),
    ]
    for body, status, code in cases:
        answer = await stack.call("POST", url, body, expect=status)
        assert answer["error"] == code, (body, answer)
    fields = (await stack.call("POST", url, {"to": "2.0.1", "tenant": "acme", "percent": 5,
                                             "budget": {"max_error_rate": 2, "x": 1}}, expect=400))["fields"]
    assert fields == {"budget.max_error_rate": "must be a number in 0..1", "budget.x": "unknown field"}


# ---- pure parts: assignment and judging, no I/O ----------------------------------------------------------------

def _version(name: str) -> Version:
    return Version(f"v-{name}", EXT, name, name[0] * 64, "{}", "unsigned", "2026-01-01T00:00:00Z")


def _canary(percent: float, *, tenants: tuple[str, ...] | None = None, budget: CanaryBudget | None = None,
            canary_id: str = "c1") -> Canary:
    return Canary(canary_id, EXT, None if tenants else "acme", tenants, "v-old", "v-new", percent,
                  budget or CanaryBudget(), 60, "running", None, "2026-01-01T00:00:00.000Z")


def _install(tenant: str = "acme", version: Version | None = None) -> Install:
    return Install(f"i-{tenant}", tenant, EXT, version or _version("old"), True, (), {}, None, "t", "t")


def test_assignment_is_sticky_per_key_and_near_the_percentage() -> None:
    new = _version("new")
    for percent in (1, 10, 37.5, 90):
        active = Active.of(_canary(percent), new)
        keys = [f"user:{i}" for i in range(10_000)]
        share = sum(choose_version(active, _install(), key) is new for key in keys) / len(keys)
        assert abs(share - percent / 100) < 0.02, (percent, share)
        assert all(choose_version(active, _install(), key) == choose_version(active, _install(), key)
                   for key in keys[:200])
    # Another canary splits the same keys independently.
    first, second = Active.of(_canary(50), new), Active.of(_canary(50, canary_id="c2"), new)
    same = sum((choose_version(first, _install(), f"k{i}") is new) == (choose_version(second, _install(), f"k{i}")
                                                                       is new) for i in range(4000))
    assert 1700 < same < 2300
    # Not targeted, or already moved off the canary's "from" version: the install's own version.
    assert choose_version(Active.of(_canary(100), new), _install("beta"), "k").version == "old"
    moved = _install(version=_version("xyz"))
    assert choose_version(Active.of(_canary(100), new), moved, "k") is moved.version
    assert choose_version(Active.of(_canary(100, tenants=("acme",)), new), _install(), "k") is new


def test_the_request_key_is_the_user_then_the_header_then_the_request() -> None:
    assert request_key("u1", "h", "r") == "user:u1"
    assert request_key(None, " h ", "r") == "key:h"
    assert request_key(None, " ", "r") == request_key("", None, "r") == "request:r"


def test_judging_rates_latency_and_the_window() -> None:
    started = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
    during, after = started + timedelta(seconds=30), started + timedelta(seconds=61)

    def arm(requests: int, errors: int = 0, timeouts: int = 0, latency: float = 10.0) -> ArmStats:
        stats = ArmStats()
        stats.merge(requests, errors, timeouts, [latency] * requests)
        return stats

    budget = CanaryBudget(max_error_rate=0.05, max_timeout_rate=0.1, max_p99_ms=500, min_requests=20)
    canary = _canary(10, budget=budget)
    assert judge(canary, arm(19, errors=19), during) is None, "not judged before min_requests"
    assert judge(canary, arm(57, errors=18), during) == (CANARY_ROLLED_BACK, "error rate 0.32 > 0.05 over 57 requests")
    assert judge(canary, arm(40, timeouts=8), during) == (CANARY_ROLLED_BACK,
                                                          "timeout rate 0.20 > 0.1 over 40 requests")
    assert judge(canary, arm(40, latency=812), during) == (CANARY_ROLLED_BACK, "p99 812 ms > 500 ms over 40 requests")
    assert judge(canary, arm(40), during) is None
    verdict = judge(canary, arm(40), after)
    assert verdict is not None
    assert verdict[0] == CANARY_PROMOTED
    assert judge(canary, arm(3), after) == (
        CANARY_ROLLED_BACK, "only 3 requests on the new version in 60 s (min_requests 20): not enough to promote")
    assert ARM_NEW == "new"


@pytest.fixture(params=["sqlite", "postgresql"])
async def registry(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlRegistry]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else str(tmp_path / "r.sqlite3")
    opened = await open_registry(url)
    assert isinstance(opened, SqlRegistry)
    yield opened
    await opened.aclose()


async def test_canaries_in_the_registry_on_both_databases(registry: SqlRegistry) -> None:
    versions = []
    for index, name in enumerate(("1.0.0", "2.0.0")):
        _, version, _ = await registry.register_version(
            extension_id=EXT, name="canary", publisher="tests", version=name, content_hash=str(index) * 64,
            manifest_json="{}", signature_status="unsigned")
        versions.append(version)
    for tenant in ("acme", "beta"):
        await registry.create_tenant(tenant, tenant)
    budget = CanaryBudget(max_error_rate=0.1, max_p99_ms=250.5, min_requests=7)
    common: dict[str, Any] = {"extension_id": EXT, "from_version_id": versions[0].id,
                              "to_version_id": versions[1].id, "budget": budget, "window_s": 60,
                              "started_at": "2026-01-01T00:00:00.000Z", "actor": "admin"}
    first = await registry.create_canary(canary_id="c1", tenant_id="acme", tenants=None, percent=12.5, **common)
    listed = await registry.create_canary(canary_id="c2", tenant_id=None, tenants=["beta"], percent=100, **common)
    assert await registry.get_canary("c1") == first
    assert (await registry.get_canary("c2")).tenants == ("beta",) == listed.tenants
    assert (await registry.get_canary("c1")).budget == budget
    with pytest.raises(RecordConflict):
        await registry.create_canary(canary_id="c3", tenant_id=None, tenants=["acme", "gamma"], percent=100,
                                     **common)
    assert [c.id for c in await registry.list_running_canaries()] == ["c1", "c2"]
    done = await registry.finish_canary("c1", state="rolled_back", reason="why", decided_at="2026-01-01T00:00:09Z",
                                        stats={"new": {"requests": 3}})
    assert done is not None
    assert (done.state, done.reason, done.stats) == ("rolled_back", "why", {"new": {"requests": 3}})
    assert await registry.finish_canary("c1", state="promoted", reason="late", decided_at="x", stats=None) is None
    assert [c.id for c in await registry.list_running_canaries()] == ["c2"]
    assert [c.id for c in await registry.list_canaries(EXT, limit=10)] == ["c2", "c1"]
    assert [c.id for c in await registry.list_canaries(EXT, state="rolled_back", limit=10)] == ["c1"]
    assert [c.id for c in await registry.list_canaries(EXT, tenant_id="acme", limit=10)] == ["c1"]
    assert [c.id for c in await registry.list_canaries(EXT, limit=1)] == ["c2"]
    with pytest.raises(RecordNotFound):
        await registry.get_canary("nope")
    with pytest.raises(RecordNotFound):
        await registry.finish_canary("nope", state="cancelled", reason="x", decided_at="x", stats=None)


async def test_extctl_starts_shows_and_cancels_a_canary(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    from extctl import main

    await stack.tenant("acme")
    await stack.tenant("beta")
    gateway = ["--gateway", stack.url, "--admin-token", ADMIN]

    async def extctl(*args: str) -> tuple[int, Any]:
        code = await trio.to_thread.run_sync(main, list(args))
        out, err = capsys.readouterr()
        return code, json.loads(out) if code == 0 else err

    code, started = await extctl("canary", "start", EXT, "--to", "2.0.1", "--percent", "25", "--tenant", "acme",
                                 "--max-error-rate", "0.1", "--min-requests", "50", "--window", "120", *gateway)
    assert code == 0
    assert (started["percent"], started["budget"]["max_error_rate"], started["budget"]["min_requests"],
            started["window_s"]) == (25.0, 0.1, 50, 120)
    code, listed = await extctl("canary", "start", EXT, "--to", "2.0.0", "--tenants", "beta", *gateway)
    assert (code, listed["tenants"]) == (0, ["beta"])
    code, found = await extctl("canary", "list", EXT, "--state", "running", *gateway)
    assert (code, [c["id"] for c in found["canaries"]]) == (0, [listed["id"], started["id"]])
    code, shown = await extctl("canary", "status", started["id"], *gateway)
    assert (code, shown["state"], shown["to"]["version"]) == (0, "running", "2.0.1")
    code, cancelled = await extctl("canary", "cancel", started["id"], *gateway)
    assert (code, cancelled["state"]) == (0, "cancelled")
    code, err = await extctl("canary", "cancel", started["id"], *gateway)
    assert code == 1
    assert err.startswith("canary_not_running:")
    code, err = await extctl("canary", "start", EXT, "--to", "2.0.1", "--percent", "5", *gateway)
    assert (code, err.strip()) == (2, "usage: --percent needs --tenant")


async def test_a_fleet_judges_the_sum_of_what_every_gateway_saw(
    make_stack: StackFactory, nursery: trio.Nursery, postgres_url: str, redis_server: RedisServer
) -> None:
    first = await make_stack(registry_database=postgres_url, redis_url=redis_server.url)
    await first.tenant("acme")
    second_app = create_app(first.state.settings)
    second_server = await start_server(nursery, second_app)
    try:
        async with httpx.AsyncClient(base_url=second_server.url, timeout=90) as client:
            second = Stack(second_server.url, client, second_app, first.runner, first.tmp, dict(first.tokens))
            canary = await first.call("POST", f"/api/v1/extensions/{EXT}/canaries", {
                "to": "2.0.0", "tenant": "acme", "percent": 100, "window_s": 3600, "budget": {"min_requests": 20}},
                expect=201)
            await second.canaries.refresh()  # what its evaluator does every interval
            for gateway in (first, second):
                assert {await gateway.ping("acme", body=False) for _ in range(10)} == {502}

            # Each gateway alone saw 10 requests, below min_requests; the fleet saw 20.
            assert await first.canaries.evaluate_now(first.state) == []
            decided = await second.canaries.evaluate_now(second.state)
            assert [(c.state, c.reason) for c in decided] == [
                (CANARY_ROLLED_BACK, "error rate 1.00 > 0.05 over 20 requests")]
            assert await first.canaries.evaluate_now(first.state) == [], "decided once, by one gateway"
            seen = await first.call("GET", f"/api/v1/canaries/{canary['id']}", expect=200)
            assert (seen["state"], seen["stats"]["new"]["requests"]) == ("rolled_back", 20)
            for gateway in (first, second):
                assert await gateway.ping("acme", body=False) == 200
    finally:
        with trio.fail_after(10):
            await second_server.close()


def test_the_evaluation_interval_is_a_setting() -> None:
    base = {"RUNNER_BASE_URL": "http://127.0.0.1:1"}
    assert load_settings(base).canary_interval_s == 1.0
    assert load_settings({**base, "GATEWAY_CANARY_INTERVAL_S": "0.25"}).canary_interval_s == 0.25
    with pytest.raises(SettingsError) as refused:
        load_settings({**base, "GATEWAY_CANARY_INTERVAL_S": "-1"})
    assert refused.value.setting == "GATEWAY_CANARY_INTERVAL_S"
