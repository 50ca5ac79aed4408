"""Usage rows and budgets in the registry (migration 5) on both backends: upsert-add, bucket sums, budgets."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio

from gateway_quart import RecordNotFound
from gateway_quart._usage import UsageRecorder
from gateway_quart.registry import (
    MIGRATIONS,
    POSTGRES_MIGRATIONS,
    Budget,
    SqliteRegistry,
    SqlRegistry,
    UsageDelta,
)


def test_migration_5_is_in_both_lists_with_the_same_name() -> None:
    assert [(m.version, m.name) for m in MIGRATIONS if m.version == 5] == [(5, "usage")]
    assert [(m.version, m.name) for m in POSTGRES_MIGRATIONS if m.version == 5] == [(5, "usage")]


async def test_sqlite_records_migration_5(tmp_path: Path) -> None:
    path = str(tmp_path / "r.sqlite3")
    await (await SqliteRegistry.open(path)).aclose()
    with sqlite3.connect(path) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert 5 in versions
    assert {"usage_minutes", "tenant_budgets"} <= tables


async def test_deltas_of_one_minute_add_up(registry: SqlRegistry) -> None:
    minute = "2026-12-06T10:15:00Z"
    await registry.add_usage([UsageDelta("acme", "echo", minute, 3, 1, {"guest_cpu_ms": 1.5, "egress_bytes": 100},
                                         {"http": 2})])
    await registry.add_usage([UsageDelta("acme", "echo", minute, 2, 0, {"guest_cpu_ms": 0.5}, {"http": 1,
                                                                                              "storage": 4})])
    await registry.add_usage([UsageDelta("acme", "echo", "2026-12-06T10:16:00Z", 1, 0, {}, {})])
    (first, second) = await registry.usage_buckets("acme", start="2026-12-06T10:00:00Z", end="2026-12-06T11:00:00Z",
                                                   granularity="minute")
    assert (first.start, first.extension_id, first.invocations, first.errors) == (minute, "echo", 5, 1)
    assert first.fields["guest_cpu_ms"] == pytest.approx(2.0)
    assert first.fields["egress_bytes"] == 100
    assert first.fields["storage_ops"] == 0
    assert first.calls == {"http": 3, "storage": 4}
    assert (second.start, second.invocations, second.calls) == ("2026-12-06T10:16:00Z", 1, {})


async def test_buckets_by_hour_and_day_per_extension_and_the_range_is_half_open(registry: SqlRegistry) -> None:
    await registry.add_usage([
        UsageDelta("acme", "echo", "2026-12-06T10:15:00Z", 1, 0, {"storage_ops": 2}, {"storage": 2}),
        UsageDelta("acme", "echo", "2026-12-06T10:59:00Z", 1, 0, {"storage_ops": 3}, {"storage": 3}),
        UsageDelta("acme", "echo", "2026-12-06T11:00:00Z", 1, 0, {}, {}),
        UsageDelta("acme", "other", "2026-12-06T10:20:00Z", 7, 0, {}, {}),
        UsageDelta("globex", "echo", "2026-12-06T10:20:00Z", 100, 0, {}, {}),  # another tenant: never counted
    ])
    hours = await registry.usage_buckets("acme", start="2026-12-06T10:00:00Z", end="2026-12-06T12:00:00Z",
                                         granularity="hour")
    assert [(b.start, b.extension_id, b.invocations) for b in hours] == [
        ("2026-12-06T10:00:00Z", "echo", 2), ("2026-12-06T10:00:00Z", "other", 7), ("2026-12-06T11:00:00Z", "echo", 1)]
    assert hours[0].fields["storage_ops"] == 5
    assert hours[0].calls == {"storage": 5}
    only_echo = await registry.usage_buckets("acme", start="2026-12-06T00:00:00Z", end="2026-12-06T11:00:00Z",
                                             extension_id="echo", granularity="day")
    assert [(b.start, b.invocations) for b in only_echo] == [("2026-12-06T00:00:00Z", 2)]  # 11:00 is excluded


async def test_concurrent_flushes_of_one_minute_lose_nothing(registry: SqlRegistry) -> None:
    minute = "2026-12-06T10:15:00Z"

    async def flush() -> None:
        for _ in range(5):
            await registry.add_usage([UsageDelta("acme", "echo", minute, 1, 0, {"egress_requests": 1}, {"http": 1})])

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(flush)
    (bucket,) = await registry.usage_buckets("acme", start=minute, end="2026-12-06T10:16:00Z", granularity="minute")
    assert (bucket.invocations, bucket.fields["egress_requests"], bucket.calls) == (20, 20, {"http": 20})


async def test_budgets_are_replaced_as_a_whole(registry: SqlRegistry) -> None:
    await registry.create_tenant("acme", "Acme")
    stored = await registry.set_budgets("acme", [Budget("invocations", "minute", 10),
                                                 Budget("egress_bytes", "day", 1e6)])
    assert stored == [Budget("egress_bytes", "day", 1e6), Budget("invocations", "minute", 10)]
    cpu = Budget("guest_cpu_ms", "hour", 5)
    assert await registry.set_budgets("acme", [cpu]) == [cpu]
    assert await registry.get_budgets("acme") == [Budget("guest_cpu_ms", "hour", 5)]
    assert await registry.get_budgets("nobody") == []
    with pytest.raises(RecordNotFound):
        await registry.set_budgets("nobody", [Budget("invocations", "minute", 1)])


async def test_the_sweep_deletes_minutes_past_the_retention_and_keeps_the_rest(registry: SqlRegistry) -> None:
    now = datetime(2026, 12, 6, 10, 15, tzinfo=UTC).timestamp()
    await registry.add_usage([
        UsageDelta("acme", "echo", "2026-12-04T10:14:00Z", 1, 0, {}, {}),  # two days old: past one day's retention
        UsageDelta("acme", "echo", "2026-12-05T10:14:00Z", 2, 0, {}, {}),  # one day and a minute: past it too
        UsageDelta("acme", "echo", "2026-12-05T10:15:00Z", 4, 0, {}, {}),  # exactly one day: kept
        UsageDelta("globex", "echo", "2026-12-06T10:00:00Z", 8, 0, {}, {}),
    ])
    assert await UsageRecorder(registry, retention_days=0, clock=lambda: now).sweep() == 0  # 0: kept forever
    assert await UsageRecorder(registry, retention_days=1, clock=lambda: now).sweep() == 2
    acme = await registry.usage_buckets("acme", start="2026-12-01T00:00:00Z", end="2026-12-07T00:00:00Z",
                                        granularity="minute")
    assert [(b.start, b.invocations) for b in acme] == [("2026-12-05T10:15:00Z", 4)]
    globex = await registry.usage_buckets("globex", start="2026-12-01T00:00:00Z", end="2026-12-07T00:00:00Z",
                                          granularity="day")
    assert [b.invocations for b in globex] == [8]
