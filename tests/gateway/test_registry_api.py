"""The registry's public names, pinned: a change to them is a deliberate change to this test."""

from __future__ import annotations

from gateway_quart import registry


def test_public_names_are_pinned() -> None:
    assert set(registry.__all__) == {
        "ApiToken", "AuditEntry", "CachedRegistry", "DEFAULT_BUSY_TIMEOUT_S", "DEFAULT_CACHE_MAX_ENTRIES",
        "DEFAULT_CACHE_TTL_S", "DEFAULT_POOL_SIZE", "Extension", "Install", "MIGRATIONS", "Migration", "Registry",
        "SIGNATURE_PRESENT", "SIGNATURE_UNSIGNED", "SIGNATURE_VERIFIED", "SealedSecrets", "SqliteRegistry", "Tenant",
        "UNSET", "Unset",
        "User", "Version", "apply_migrations", "new_id", "utc_now",
        "DEFAULT_POSTGRES_POOL_SIZE", "POSTGRES_MIGRATIONS", "PostgresRegistry", "SqlRegistry", "open_registry",
        "Revocations", "HISTORY_ACTIONS", "HistoryEntry",
        "BUDGET_PERIODS", "GRANULARITY_PREFIX", "Budget", "UsageBucket", "UsageDelta",
        "CANARY_CANCELLED", "CANARY_PROMOTED", "CANARY_ROLLED_BACK", "CANARY_RUNNING", "CANARY_STATES", "Canary",
        "CanaryBudget",
        "JournalIndexEntry", "UpgradeCheck",
    }
    assert len(registry.__all__) == len(set(registry.__all__))
    for name in registry.__all__:
        assert hasattr(registry, name), name
