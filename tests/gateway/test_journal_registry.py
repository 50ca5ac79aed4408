"""Migration 2 (journal) on both registry backends: install policies, the entry index, tenant settings, upgrade
checks. The ``registry`` fixture runs each test once on SQLite and once on a real PostgreSQL server."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import cast

import pytest

from gateway_quart import RecordNotFound
from gateway_quart.registry import (
    CachedRegistry,
    JournalIndexEntry,
    Registry,
    SqliteRegistry,
    SqlRegistry,
    UpgradeCheck,
)

HASH_A = "a" * 64
HASH_B = "b" * 64


async def _installed(registry: SqlRegistry, tenant: str = "acme") -> None:
    await registry.ensure_tenant(tenant, tenant)
    _, version, _ = await registry.register_version(
        extension_id="echo", name="echo", publisher="Example", version="1.0.0", content_hash=HASH_A,
        manifest_json="{}", signature_status="unsigned",
    )
    await registry.create_install(tenant_id=tenant, extension_id="echo", version_id=version.id,
                                  granted_capabilities=[], config={})


def _entry(entry_id: str, *, tenant: str = "acme", outcome: str = "ok", at: str = "2026-12-06T10:00:00.000Z",
           expires: str = "2026-12-20T10:00:00.000Z") -> JournalIndexEntry:
    return JournalIndexEntry(entry_id, tenant, "echo", "inst-1", HASH_A, f"req-{entry_id}", outcome,
                             200 if outcome == "ok" else 500, at, expires)


async def test_install_journal_policy_defaults_to_errors_and_can_be_set(registry: SqlRegistry) -> None:
    await _installed(registry)
    assert (await registry.get_install("acme", "echo")).journal_policy == "errors"
    updated = await registry.set_journal_policy("acme", "echo", "sample:0.25")
    assert updated.journal_policy == "sample:0.25"
    active = await registry.find_active_install("acme", "echo")
    assert active is not None
    assert active.journal_policy == "sample:0.25"
    # Other install updates keep the policy.
    assert (await registry.update_install("acme", "echo", enabled=False)).journal_policy == "sample:0.25"
    with pytest.raises(RecordNotFound):
        await registry.set_journal_policy("acme", "nope", "all")


async def test_journal_index_lists_filters_and_hides_other_tenants(registry: SqlRegistry) -> None:
    entries = [
        _entry("e1", at="2026-12-06T10:00:01.000Z"),
        _entry("e2", outcome="trap", at="2026-12-06T10:00:02.000Z"),
        _entry("e3", at="2026-12-06T10:00:03.000Z"),
        _entry("o1", tenant="other", at="2026-12-06T10:00:04.000Z"),
    ]
    assert await registry.record_journal_entries(entries) == 4
    assert await registry.record_journal_entries(entries[:1]) == 0, "an id already indexed is skipped"
    newest_first = await registry.list_journal_entries("acme", limit=10)
    assert [e.id for e in newest_first] == ["e3", "e2", "e1"]
    assert newest_first[1] == entries[1]
    assert [e.id for e in await registry.list_journal_entries("acme", outcome="trap", limit=10)] == ["e2"]
    assert [e.id for e in await registry.list_journal_entries("acme", extension_id="other", limit=10)] == []
    assert [e.id for e in await registry.list_journal_entries("acme", content_hash=HASH_A, limit=2)] == ["e3", "e2"]
    assert (await registry.get_journal_entry("acme", "e2")).outcome == "trap"
    with pytest.raises(RecordNotFound):
        await registry.get_journal_entry("acme", "o1")  # another tenant's entry looks like a missing one
    with pytest.raises(RecordNotFound):
        await registry.get_journal_entry("acme", "missing")


async def test_expired_entries_are_listed_and_deleted(registry: SqlRegistry) -> None:
    await registry.record_journal_entries([
        _entry("old", expires="2026-12-01T00:00:00.000Z"),
        _entry("edge", expires="2026-12-06T00:00:00.000Z"),
        _entry("new", expires="2026-12-30T00:00:00.000Z"),
    ])
    expired = await registry.list_expired_journal_entries("2026-12-06T00:00:00.000Z", limit=10)
    assert [e.id for e in expired] == ["old", "edge"]
    assert [e.id for e in await registry.list_expired_journal_entries("2026-12-06T00:00:00.000Z", limit=1)] == ["old"]
    assert await registry.delete_journal_entries([e.id for e in expired]) == 2
    assert await registry.delete_journal_entries([]) == 0
    assert [e.id for e in await registry.list_journal_entries("acme", limit=10)] == ["new"]


async def test_tenant_settings_merge_keys(registry: SqlRegistry) -> None:
    await registry.ensure_tenant("acme", "Acme")
    assert await registry.get_tenant_settings("acme") == {}
    assert await registry.update_tenant_settings("acme", {"require_upgrade_check": True}) == {
        "require_upgrade_check": True}
    merged = await registry.update_tenant_settings("acme", {"other_key": 3})
    assert merged == {"require_upgrade_check": True, "other_key": 3}, "other helpers' keys are kept"
    assert await registry.get_tenant_settings("acme") == merged
    with pytest.raises(RecordNotFound):
        await registry.get_tenant_settings("nobody")
    with pytest.raises(RecordNotFound):
        await registry.update_tenant_settings("nobody", {"require_upgrade_check": True})


async def test_upgrade_checks_newest_in_window(registry: SqlRegistry) -> None:
    def check(check_id: str, passed: bool, at: str) -> UpgradeCheck:
        return UpgradeCheck(check_id, "acme", "echo", HASH_A, HASH_B, passed, json.dumps({"passed": passed}), at)

    await registry.record_upgrade_check(check("c1", True, "2026-12-06T09:00:00.000Z"))
    await registry.record_upgrade_check(check("c2", False, "2026-12-06T10:00:00.000Z"))
    newest = await registry.find_upgrade_check("acme", "echo", HASH_A, HASH_B, since="2026-12-06T00:00:00.000Z")
    assert newest is not None
    assert newest.id == "c2"
    assert newest.passed is False
    assert await registry.find_upgrade_check("acme", "echo", HASH_A, HASH_B, since="2026-12-06T11:00:00.000Z") is None
    assert await registry.find_upgrade_check("acme", "echo", HASH_B, HASH_A, since="2026-12-01T00:00:00.000Z") is None
    assert await registry.find_upgrade_check("other", "echo", HASH_A, HASH_B, since="2026-12-01T00:00:00.000Z") is None


async def test_cached_registry_sees_a_new_policy_at_once(registry: SqlRegistry) -> None:
    await _installed(registry)
    cached = CachedRegistry(cast(Registry, registry), ttl_s=60)
    first = await cached.find_active_install("acme", "echo")
    assert first is not None
    assert first.journal_policy == "errors"
    await cached.set_journal_policy("acme", "echo", "all")
    again = await cached.find_active_install("acme", "echo")
    assert again is not None
    assert again.journal_policy == "all"


async def test_migration_2_upgrades_a_version_1_database(tmp_path: Path) -> None:
    # A registry created before the journal: its installs gain the default policy, nothing else changes.
    path = tmp_path / "r.sqlite3"
    opened = await SqliteRegistry.open(str(path))
    await _installed(opened)
    await opened.aclose()
    with sqlite3.connect(path) as conn:
        for table in ("journal_entries", "tenant_settings", "upgrade_checks"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("ALTER TABLE installs DROP COLUMN journal_policy")
        conn.execute("DELETE FROM schema_migrations WHERE version = 2")
    reopened = await SqliteRegistry.open(str(path))
    try:
        assert (await reopened.get_install("acme", "echo")).journal_policy == "errors"
    finally:
        await reopened.aclose()
