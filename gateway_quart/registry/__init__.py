"""The gateway's registry: tenants, users, tokens, extensions, versions, installs, audit.

:class:`Registry` is the interface; :class:`SqliteRegistry` the embedded implementation.
"""

from ._migrations import MIGRATIONS, Migration, apply_migrations
from ._models import (
    SIGNATURE_PRESENT,
    SIGNATURE_UNSIGNED,
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
    "DEFAULT_POOL_SIZE",
    "MIGRATIONS",
    "SIGNATURE_PRESENT",
    "SIGNATURE_UNSIGNED",
    "UNSET",
    "ApiToken",
    "AuditEntry",
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
