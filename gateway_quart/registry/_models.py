"""Records of the registry: plain frozen dataclasses, free of any database type."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal


class _Unset(enum.Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET
"""Marks an update field as "leave unchanged" (``None`` may be a real value, e.g. "no secrets")."""

Unset = Literal[_Unset.UNSET]

SIGNATURE_UNSIGNED: Final = "unsigned"
SIGNATURE_PRESENT: Final = "signed_unverified"
"""A ``bundle.sig`` sits beside the bundle; the runner verifies it against its trust bundle."""
SIGNATURE_VERIFIED: Final = "signed_verified"
"""The gateway verified ``bundle.sig`` against its ``SIGNING_TRUST_BUNDLE`` (the runners') when registering."""


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    created_at: str


@dataclass(frozen=True)
class User:
    id: str
    tenant_id: str
    email: str
    name: str
    user_type: str
    roles: tuple[str, ...]
    client_name: str | None
    client_id: str | None
    created_at: str


@dataclass(frozen=True)
class ApiToken:
    """An API token's record; the token itself is never stored, only its SHA-256."""

    id: str
    user_id: str
    name: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None


@dataclass(frozen=True)
class Extension:
    id: str
    name: str
    publisher: str
    created_at: str


@dataclass(frozen=True)
class Version:
    id: str
    extension_id: str
    version: str
    content_hash: str
    """Bare lower-case hex of the bundle's sha256."""
    manifest_json: str
    signature_status: str
    created_at: str


@dataclass(frozen=True)
class SealedSecrets:
    """A sealed envelope and the names (never the values) of the secrets in it."""

    envelope: Mapping[str, str]
    keys: tuple[str, ...]
    expires_at: str | None = None


@dataclass(frozen=True)
class Install:
    """One tenant's install of one extension, with the version it runs."""

    id: str
    tenant_id: str
    extension_id: str
    version: Version
    enabled: bool
    granted_capabilities: tuple[str, ...]
    config: Mapping[str, str] = field(hash=False)
    secrets: SealedSecrets | None = field(hash=False)
    created_at: str
    updated_at: str
    journal_policy: str = "errors"
    """Which invocations the runners record into the journal (``contract.parse_journal_policy``'s forms)."""
    pending_version: Version | None = None
    """An upgrade held until a tenant admin consents to what it asks for more (``_rollout.py``)."""
    pending_since: str | None = None


HISTORY_ACTIONS: Final = ("install", "upgrade", "rollback", "consent", "canary_promote", "canary_rollback")
"""What moved an install from one version to another (``install_history.action``)."""


@dataclass(frozen=True)
class HistoryEntry:
    """One version change of an install: from which version (``None`` for the install itself) to which."""

    id: int
    tenant_id: str
    extension_id: str
    from_version: Version | None
    to_version: Version
    action: str
    actor: str | None
    reason: str
    at: str


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    tenant_id: str
    user_id: str | None
    extension_id: str
    method: str
    path: str
    status: int | None
    request_id: str


@dataclass(frozen=True)
class JournalIndexEntry:
    """The registry's index row of one journal entry (the entry itself is a sealed object in the store)."""

    id: str
    tenant_id: str
    extension_id: str
    install_id: str | None
    content_hash: str
    """Bare lower-case hex of the bundle that ran."""
    request_id: str | None
    outcome: str
    """``ok``, or why the invocation failed (``timeout``, ``trap``, an error code…)."""
    status: int | None
    recorded_at: str
    expires_at: str
    """When the retention sweeper deletes the entry and its object (RFC 3339 UTC)."""


@dataclass(frozen=True)
class UpgradeCheck:
    """The stored result of replaying recorded invocations of ``from_hash`` against ``to_hash``."""

    id: str
    tenant_id: str
    extension_id: str
    from_hash: str
    to_hash: str
    passed: bool
    report_json: str
    created_at: str
