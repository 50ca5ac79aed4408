"""The gateway's registry: tenants, users, tokens, extensions, versions, installs, audit.

:class:`Registry` is the interface; :class:`SqliteRegistry` the embedded implementation; :class:`CachedRegistry`
keeps the hot-path lookups of another one in memory for a few seconds.
"""

from ._cached import DEFAULT_CACHE_MAX_ENTRIES, DEFAULT_CACHE_TTL_S, CachedRegistry
from ._migrations import MIGRATIONS, Migration, apply_migrations
from ._models import (
    SIGNATURE_PRESENT,
    SIGNATURE_UNSIGNED,
    SIGNATURE_VERIFIED,
    UNSET,
    ApiToken,
    AuditEntry,
    Extension,
    Install,
    SealedSecrets,
    Tenant,
    Unset,
    User,
    Version,
)
from ._protocol import Registry
from ._sqlite import DEFAULT_BUSY_TIMEOUT_S, DEFAULT_POOL_SIZE, SqliteRegistry, new_id, utc_now

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_S",
    "DEFAULT_CACHE_MAX_ENTRIES",
    "DEFAULT_CACHE_TTL_S",
    "DEFAULT_POOL_SIZE",
    "MIGRATIONS",
    "SIGNATURE_PRESENT",
    "SIGNATURE_UNSIGNED",
    "SIGNATURE_VERIFIED",
    "UNSET",
    "ApiToken",
    "AuditEntry",
    "CachedRegistry",
    "Extension",
    "Install",
    "Migration",
    "Registry",
    "SealedSecrets",
    "SqliteRegistry",
    "Tenant",
    "Unset",
    "User",
    "Version",
    "apply_migrations",
    "new_id",
    "utc_now",
]
