"""Usage accounting through a served gateway: a known workload's counters, the usage API and its RBAC, the
least-privilege report, and the recorder's bounds (dropping and counting, retrying a failed write)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from contract import ExecuteResult
from extctl import main
from gateway_quart import RegistryError, create_app
from gateway_quart._usage import UsageRecorder, minute_of
from gateway_quart.registry import SqliteRegistry, UsageDelta

from ._helpers import FakeRunner, RunnerReply, start_server
from .conftest import ADMIN_TOKEN, Gateway, GatewayFactory, Tenant

USAGE = {"guest_cpu_ms": 2.5, "memory_mb_ms": 640.0, "egress_requests": 1, "egress_bytes": 1200,
         "storage_ops": 2, "storage_bytes": 64, "debug_events": 3, "calls.http": 1, "calls.storage": 2}


def _since() -> str:
    return (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _workload_runner() -> FakeRunner:
    """Every call uses USAGE; a path ending in /fail answers a runner-side error (still accounted)."""

    def reply(call: dict[str, Any]) -> RunnerReply:
        if call["body"]["http"]["path"].endswith("/fail"):
            return RunnerReply(status=500, error="guest_trap", usage={"guest_cpu_ms": 1.0})
        return RunnerReply(usage=USAGE)

    return FakeRunner(reply=reply)


async def _acme(make_gateway: GatewayFactory, **settings: Any) -> tuple[Gateway, Tenant]:
    gateway = await make_gateway(_workload_runner(), **settings)
    await gateway.register(await gateway.publish("v1"))
    tenant = await gateway.tenant("acme")
    await gateway.install("acme", granted_capabilities=["cap:http.fetch", "cap:secrets.get", "cap:storage.kv"])
    return gateway, tenant


async def test_a_known_workload_is_counted_exactly(make_gateway: GatewayFactory) -> None:
    gateway, tenant = await _acme(make_gateway)
    for n in range(24):
        path = "/api/ext/echo/items/fail" if n % 6 == 0 else "/api/ext/echo/items"
        await gateway.client.get(path, headers=tenant.auth)
    resp = await gateway.client.get("/api/v1/usage", params={"tenant": "acme", "from": _since()},
                                    headers=gateway.admin)
    assert resp.status_code == 200, resp.text
    report = resp.json()
    ok, failed = 20, 4
    totals = report["totals"]
    assert (totals["invocations"], totals["errors"]) == (ok + failed, failed)
    # Within 5% is the bar; with the runner's numbers handed through, it is exact.
    assert totals["guest_cpu_ms"] == pytest.approx(ok * 2.5 + failed * 1.0, rel=0.05)
    for name in ("memory_mb_ms", "egress_requests", "egress_bytes", "storage_ops", "storage_bytes", "debug_events"):
        assert totals[name] == pytest.approx(ok * USAGE[name], rel=0.05), name
    assert totals["calls"] == {"http": ok, "storage": 2 * ok}
    assert report["extensions"]["echo"] == totals
    assert sum(point["invocations"] for point in report["series"]) == ok + failed
    assert {point["extension_id"] for point in report["series"]} == {"echo"}


async def test_concurrent_calls_of_two_tenants_are_each_counted_once(make_gateway: GatewayFactory) -> None:
    gateway, acme = await _acme(make_gateway, usage_flush_interval_s=0.05)  # flushes race with the calls
    globex = await gateway.tenant("globex", email="bob@example.com")
    await gateway.install("globex", granted_capabilities=["cap:http.fetch"])

    async def calls(tenant: Tenant, n: int) -> None:
        for _ in range(n):
            assert (await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)).status_code == 200

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(calls, acme, 10)
            nursery.start_soon(calls, globex, 5)
    for tenant_id, expected in (("acme", 40), ("globex", 20)):
        report = (await gateway.client.get("/api/v1/usage", params={"tenant": tenant_id, "from": _since()},
                                           headers=gateway.admin)).json()
        assert report["totals"]["invocations"] == expected
        assert report["totals"]["egress_bytes"] == expected * USAGE["egress_bytes"]
        assert report["totals"]["calls"] == {"http": expected, "storage": 2 * expected}


async def test_the_gateway_counts_what_it_accounted(make_gateway: GatewayFactory) -> None:
    gateway, tenant = await _acme(make_gateway)
    for _ in range(3):
        await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    await gateway.client.get("/api/v1/usage", params={"tenant": "acme", "from": _since()}, headers=gateway.admin)
    stats = (await gateway.client.get("/api/v1/usage/statistics", headers=gateway.admin)).json()
    assert stats["usage"]["recorded"] == 3
    assert (stats["usage"]["dropped"], stats["usage"]["pending_rows"]) == (0, 0)
    assert stats["usage"]["flushed_rows"] >= 1
    assert (await gateway.client.get("/api/v1/usage/statistics", headers=tenant.auth)).status_code == 403


async def test_the_usage_api_answers_only_admins_of_the_tenant(make_gateway: GatewayFactory) -> None:
    gateway, member = await _acme(make_gateway)
    await gateway.client.get("/api/ext/echo/items", headers=member.auth)
    admin = await gateway.user("acme", roles=["admin"], email="boss@example.com")
    other = await gateway.tenant("globex", roles=["admin"])
    params = {"from": _since()}

    own = await gateway.client.get("/api/v1/usage", params=params, headers=admin.auth)  # tenant defaults to own
    assert (own.status_code, own.json()["tenant_id"], own.json()["totals"]["invocations"]) == (200, "acme", 1)
    foreign = await gateway.client.get("/api/v1/usage", params={**params, "tenant": "acme"}, headers=other.auth)
    assert (foreign.status_code, foreign.json()["error"]) == (404, "tenant_not_found")
    assert "totals" not in foreign.json()
    mine = await gateway.client.get("/api/v1/usage", params=params, headers=other.auth)
    assert (mine.status_code, mine.json()["totals"]["invocations"]) == (200, 0)  # acme's calls are not globex's
    not_admin = await gateway.client.get("/api/v1/usage", params=params, headers=member.auth)
    assert not_admin.status_code == 403
    anonymous = await gateway.client.get("/api/v1/usage", params=params)
    assert anonymous.status_code == 401

    no_tenant = await gateway.client.get("/api/v1/usage", params=params, headers=gateway.admin)
    assert (no_tenant.status_code, list(no_tenant.json()["fields"])) == (400, ["tenant"])
    missing = await gateway.client.get("/api/v1/usage", params={**params, "tenant": "nobody"}, headers=gateway.admin)
    assert (missing.status_code, missing.json()["error"]) == (404, "tenant_not_found")


@pytest.mark.parametrize(("params", "field"), [
    ({}, "from"),
    ({"from": "yesterday"}, "from"),
    ({"from": "2026-12-06T10:00:00"}, "from"),  # no offset
    ({"from": "2026-12-06", "to": "2026-12-05"}, "to"),
    ({"from": "2026-12-01", "to": "2026-12-06", "granularity": "minute"}, "to"),  # too many minutes
    ({"from": "2026-12-06", "granularity": "week"}, "granularity"),
    ({"from": "2026-12-06", "extension": "../x"}, "extension"),
])
async def test_bad_usage_queries_name_the_parameter(gateway: Gateway, params: dict[str, str], field: str) -> None:
    resp = await gateway.client.get("/api/v1/usage", params={"tenant": "acme", **params}, headers=gateway.admin)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_request"
    assert field in resp.json()["fields"]


async def test_granularity_and_extension_filter(make_gateway: GatewayFactory) -> None:
    gateway, tenant = await _acme(make_gateway)
    for _ in range(3):
        await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    base = {"tenant": "acme", "from": _since()}
    by_day = (await gateway.client.get("/api/v1/usage", params={**base, "granularity": "day"},
                                       headers=gateway.admin)).json()
    assert by_day["granularity"] == "day"
    assert all(point["start"].endswith("T00:00:00Z") for point in by_day["series"])
    assert by_day["totals"]["invocations"] == 3
    other = (await gateway.client.get("/api/v1/usage", params={**base, "extension": "nothing"},
                                      headers=gateway.admin)).json()
    assert (other["extension_id"], other["totals"]["invocations"], other["series"]) == ("nothing", 0, [])


async def test_the_privileges_report_names_grants_never_used(make_gateway: GatewayFactory) -> None:
    gateway, tenant = await _acme(make_gateway)
    for _ in range(2):
        await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    resp = await gateway.client.get("/api/v1/tenants/acme/installs/echo/privileges", params={"days": 7},
                                    headers=gateway.admin)
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert (report["days"], report["invocations"]) == (7, 2)
    by_cap = {row["capability"]: row for row in report["capabilities"]}
    assert by_cap["cap:http.fetch"]["calls"] == 2
    assert by_cap["cap:storage.kv"]["calls"] == 4
    assert by_cap["cap:secrets.get"] == {"capability": "cap:secrets.get", "granted": True, "calls": 0, "used": False,
                                         "always_granted": False}
    assert report["unused"] == ["cap:secrets.get"]
    assert "cap:secrets.get" in report["suggestion"]

    admin = await gateway.user("acme", roles=["admin"], email="boss@example.com")
    assert (await gateway.client.get("/api/v1/tenants/acme/installs/echo/privileges",
                                     headers=admin.auth)).json()["days"] == 30
    globex = await gateway.tenant("globex", roles=["admin"])
    foreign = await gateway.client.get("/api/v1/tenants/acme/installs/echo/privileges", headers=globex.auth)
    assert foreign.status_code == 404
    bad = await gateway.client.get("/api/v1/tenants/acme/installs/echo/privileges", params={"days": "0"},
                                   headers=gateway.admin)
    assert (bad.status_code, list(bad.json()["fields"])) == (400, ["days"])
    absent = await gateway.client.get("/api/v1/tenants/acme/installs/nope/privileges", headers=gateway.admin)
    assert (absent.status_code, absent.json()["error"]) == (404, "not_installed")


# -- the recorder on its own -------------------------------------------------------------------------------------


def _result(usage: dict[str, float] | None = None, *, error: str | None = None) -> ExecuteResult:
    return ExecuteResult(500 if error else 200, {}, b"", error, usage=usage)


async def test_a_full_pending_table_drops_and_counts(tmp_path: Path) -> None:
    registry = await SqliteRegistry.open(str(tmp_path / "r.sqlite3"))
    recorder = UsageRecorder(registry, max_pending_rows=1, clock=lambda: 1_780_000_000.0)
    assert recorder.record("acme", "echo", _result({"guest_cpu_ms": 1}))
    assert recorder.record("acme", "echo", _result({"guest_cpu_ms": 1}))  # the same minute: the same sum
    assert not recorder.record("globex", "echo", _result())  # a new sum, and no room for it
    assert (recorder.statistics().recorded, recorder.statistics().dropped) == (2, 1)
    await recorder.flush()
    minute = minute_of(1_780_000_000.0)
    (bucket,) = await registry.usage_buckets("acme", start=minute, end="9999-01-01T00:00:00Z", granularity="minute")
    assert (bucket.invocations, bucket.fields["guest_cpu_ms"]) == (2, 2)
    assert recorder.record("globex", "echo", _result())  # room again once flushed
    await registry.aclose()


async def test_a_backlog_is_written_in_batches(tmp_path: Path) -> None:
    registry = await SqliteRegistry.open(str(tmp_path / "r.sqlite3"))
    recorder = UsageRecorder(registry, write_batch=2, clock=lambda: 1_780_000_000.0)
    for n in range(5):
        recorder.record("acme", f"ext-{n}", _result({"storage_ops": n}))
    await recorder.flush()
    assert (recorder.statistics().flushed_rows, recorder.statistics().pending_rows) == (5, 0)
    minute = minute_of(1_780_000_000.0)
    buckets = await registry.usage_buckets("acme", start=minute, end="9999-01-01T00:00:00Z", granularity="minute")
    assert sorted((b.extension_id, b.fields["storage_ops"]) for b in buckets) == [(f"ext-{n}", n) for n in range(5)]
    await registry.aclose()


class _FailsOnce:
    """The real registry, except that the first write fails as a database outage would."""

    def __init__(self, inner: SqliteRegistry) -> None:
        self.inner = inner
        self.failures = 1

    async def add_usage(self, deltas: Sequence[UsageDelta]) -> None:
        if self.failures:
            self.failures -= 1
            raise RegistryError("registry database unavailable: injected")
        await self.inner.add_usage(deltas)


async def test_a_failed_write_is_retried_without_losing_or_doubling(tmp_path: Path) -> None:
    registry = await SqliteRegistry.open(str(tmp_path / "r.sqlite3"))
    recorder = UsageRecorder(_FailsOnce(registry), clock=lambda: 1_780_000_000.0)  # type: ignore[arg-type]
    recorder.record("acme", "echo", _result({"egress_bytes": 10, "calls.http": 1}))
    await recorder.flush()  # fails: kept
    assert (recorder.statistics().failed_writes, recorder.statistics().pending_rows) == (1, 1)
    recorder.record("acme", "echo", _result({"egress_bytes": 5}, error="guest_trap"))
    await recorder.flush()
    minute = minute_of(1_780_000_000.0)
    (bucket,) = await registry.usage_buckets("acme", start=minute, end="9999-01-01T00:00:00Z", granularity="minute")
    assert (bucket.invocations, bucket.errors, bucket.fields["egress_bytes"], bucket.calls) == (2, 1, 15, {"http": 1})
    assert recorder.statistics().pending_rows == 0
    await registry.aclose()


async def test_unknown_or_malformed_usage_keys_are_ignored(tmp_path: Path) -> None:
    registry = await SqliteRegistry.open(str(tmp_path / "r.sqlite3"))
    recorder = UsageRecorder(registry, clock=lambda: 1_780_000_000.0)
    recorder.record("acme", "echo", _result({"guest_cpu_ms": 1, "mystery": 5, "calls.": 1, "calls.a b": 1,
                                             "calls.http": 2}))
    await recorder.flush()
    minute = minute_of(1_780_000_000.0)
    (bucket,) = await registry.usage_buckets("acme", start=minute, end="9999-01-01T00:00:00Z", granularity="minute")
    assert (bucket.invocations, bucket.fields["guest_cpu_ms"], bucket.calls) == (1, 1, {"http": 2})
    await registry.aclose()


async def test_extctl_usage_privileges_and_budgets(
    make_gateway: GatewayFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway, tenant = await _acme(make_gateway)
    await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    admin = await gateway.user("acme", roles=["admin"], email="boss@example.com")
    capsys.readouterr()

    def run(*argv: str) -> tuple[int, Any]:
        code = main([*argv, "--gateway", gateway.url])
        out, err = capsys.readouterr()
        return code, json.loads(out) if code == 0 else err

    code, report = await trio.to_thread.run_sync(
        lambda: run("usage", "--admin-token", ADMIN_TOKEN, "--tenant", "acme", "--from", _since()))
    assert (code, report["totals"]["invocations"], report["totals"]["calls"]) == (0, 1, {"http": 1, "storage": 2})
    code, own = await trio.to_thread.run_sync(lambda: run("privileges", "--admin-token", admin.token, "echo",
                                                          "--days", "3"))
    assert (code, own["tenant_id"], own["days"], own["unused"]) == (0, "acme", 3, ["cap:secrets.get"])
    code, err = await trio.to_thread.run_sync(lambda: run("privileges", "--admin-token", ADMIN_TOKEN, "echo"))
    assert code == 2
    assert "--tenant is required" in err
    code, err = await trio.to_thread.run_sync(lambda: run("usage", "--admin-token", ADMIN_TOKEN, "--from", "x",
                                                          "--tenant", "acme"))
    assert code == 1
    assert err.startswith("invalid_request:")

    code, stored = await trio.to_thread.run_sync(lambda: run(
        "budgets", "--admin-token", ADMIN_TOKEN, "--tenant", "acme", "--set", "invocations/minute=600",
        "--set", "egress_bytes/day=5000000000"))
    assert (code, [(b["name"], b["period"], b["limit"]) for b in stored["budgets"]]) == (
        0, [("egress_bytes", "day", 5_000_000_000), ("invocations", "minute", 600)])
    code, shown = await trio.to_thread.run_sync(lambda: run("budgets", "--admin-token", admin.token,
                                                            "--tenant", "acme"))
    assert (code, shown) == (0, stored)
    code, err = await trio.to_thread.run_sync(lambda: run("budgets", "--admin-token", ADMIN_TOKEN, "--tenant", "acme",
                                                          "--set", "cpu=5"))
    assert code == 2
    assert "NAME/PERIOD=LIMIT" in err
    code, cleared = await trio.to_thread.run_sync(lambda: run("budgets", "--admin-token", ADMIN_TOKEN,
                                                              "--tenant", "acme", "--clear"))
    assert (code, cleared["budgets"]) == (0, [])


async def test_a_failure_before_the_guest_started_is_an_error_but_no_invocation(tmp_path: Path) -> None:
    registry = await SqliteRegistry.open(str(tmp_path / "r.sqlite3"))
    recorder = UsageRecorder(registry, clock=lambda: 1_780_000_000.0)
    recorder.record("acme", "echo", ExecuteResult(429, {}, b"", "overloaded: queue full"))  # no usage: never ran
    recorder.record("acme", "echo", _result({"guest_cpu_ms": 3}, error="execute_failed: timeout"))
    await recorder.flush()
    minute = minute_of(1_780_000_000.0)
    (bucket,) = await registry.usage_buckets("acme", start=minute, end="9999-01-01T00:00:00Z", granularity="minute")
    assert (bucket.invocations, bucket.errors, bucket.fields["guest_cpu_ms"]) == (1, 2, 3)
    await registry.aclose()


async def test_a_graceful_stop_writes_the_last_sums(make_gateway: GatewayFactory, nursery: trio.Nursery) -> None:
    gateway, tenant = await _acme(make_gateway)  # the registry and the installs, made through a first gateway
    settings = replace(gateway.settings, usage_flush_interval_s=60.0)  # no timed flush within this test
    second = await start_server(nursery, create_app(settings))
    async with httpx.AsyncClient(base_url=second.url, timeout=10) as client:
        for _ in range(3):
            assert (await client.get("/api/ext/echo/items", headers=tenant.auth)).status_code == 200
    await second.close()  # SIGTERM's path: drain, then the app's stop flushes
    registry = await SqliteRegistry.open(settings.registry_database)
    buckets = await registry.usage_buckets("acme", start=_since(), end="9999-01-01T00:00:00Z", granularity="day")
    assert sum(b.invocations for b in buckets) == 3
    await registry.aclose()
