"""The gateway's registry: tenants, users, tokens, extensions, versions, installs, audit, journal index.

:class:`Registry` is the interface; :class:`SqliteRegistry` the embedded implementation and
:class:`PostgresRegistry` the fleet's, both running the same repository code (:class:`SqlRegistry`);
:func:`open_registry` picks one from ``REGISTRY_DATABASE``. :class:`CachedRegistry` keeps the hot-path lookups
of another one in memory for a few seconds.
"""

from ._cached import DEFAULT_CACHE_MAX_ENTRIES, DEFAULT_CACHE_TTL_S, CachedRegistry, Revocations
from ._canaries import (
    CANARY_CANCELLED,
    CANARY_PROMOTED,
    CANARY_ROLLED_BACK,
    CANARY_RUNNING,
    CANARY_STATES,
    Canary,
    CanaryBudget,
)
from ._migrations import MIGRATIONS, POSTGRES_MIGRATIONS, Migration, apply_migrations
from ._models import (
    HISTORY_ACTIONS,
    SIGNATURE_PRESENT,
    SIGNATURE_UNSIGNED,
    SIGNATURE_VERIFIED,
    UNSET,
    ApiToken,
    AuditEntry,
    Extension,
    HistoryEntry,
    Install,
    JournalIndexEntry,
    SealedSecrets,
    Tenant,
    Unset,
    UpgradeCheck,
    User,
    Version,
)
from ._open import open_registry
from ._postgres import DEFAULT_POSTGRES_POOL_SIZE, PostgresRegistry
from ._protocol import Registry
from ._repository import SqlRegistry, new_id, utc_now
from ._sqlite import DEFAULT_BUSY_TIMEOUT_S, DEFAULT_POOL_SIZE, SqliteRegistry
from ._usage import BUDGET_PERIODS, GRANULARITY_PREFIX, Budget, UsageBucket, UsageDelta

__all__ = [
    "BUDGET_PERIODS",
    "CANARY_CANCELLED",
    "CANARY_PROMOTED",
    "CANARY_ROLLED_BACK",
    "CANARY_RUNNING",
    "CANARY_STATES",
    "DEFAULT_BUSY_TIMEOUT_S",
    "DEFAULT_CACHE_MAX_ENTRIES",
    "DEFAULT_CACHE_TTL_S",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_POSTGRES_POOL_SIZE",
    "GRANULARITY_PREFIX",
    "HISTORY_ACTIONS",
    "MIGRATIONS",
    "POSTGRES_MIGRATIONS",
    "SIGNATURE_PRESENT",
    "SIGNATURE_UNSIGNED",
    "SIGNATURE_VERIFIED",
    "UNSET",
    "ApiToken",
    "AuditEntry",
    "Budget",
    "CachedRegistry",
    "Canary",
    "CanaryBudget",
    "Extension",
    "HistoryEntry",
    "Install",
    "JournalIndexEntry",
    "Migration",
    "PostgresRegistry",
    "Registry",
    "Revocations",
    "SealedSecrets",
    "SqlRegistry",
    "SqliteRegistry",
    "Tenant",
    "Unset",
    "UpgradeCheck",
    "UsageBucket",
    "UsageDelta",
    "User",
    "Version",
    "apply_migrations",
    "new_id",
    "open_registry",
    "utc_now",
]
