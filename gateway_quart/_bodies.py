"""The JSON request bodies of the gateway, one typed model each: what the handlers validate and OpenAPI shows.

Each model is a frozen dataclass whose fields carry their rule (:mod:`._rules`); :func:`parse_body` checks
a request against it and :func:`body_schema` describes it in ``/api/v1/openapi.json``, so the two cannot drift.
Rules that need the registry (a named version exists, a grant is requested by the manifest) stay in the
handlers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Final

from ._auth import ROLE_PERMISSIONS
from ._budgets import BUDGET_NAMES
from ._rules import Choice, Flag, Integer, ModelList, Nested, Number, Text, TextList, TextMap, Timestamp
from ._validation import ID_HINT, ID_PATTERN
from .registry import BUDGET_PERIODS

USER_TYPES: Final = ("internal", "client")
MAX_ROLES: Final = 8
MAX_TOKEN_TTL_S: Final = 366 * 24 * 3600
MIN_TOKEN_TTL_S: Final = 60
MAX_GRANTS: Final = 64
MAX_CONFIG_ENTRIES: Final = 256
MAX_CONFIG_VALUE: Final = 8 * 1024
MAX_SECRET_ENTRIES: Final = 128
MAX_SECRET_VALUE: Final = 64 * 1024
MAX_REASON: Final = 500
"""Characters of the free-text reason kept in an install's version history."""
KEY_PATTERN: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")
"""Names of config entries and secrets."""
EMAIL_PATTERN: Final = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")
MAX_BUDGET_LIMIT: Final = 2**53
MAX_BUDGETS: Final = len(BUDGET_PERIODS) * len(BUDGET_NAMES)
JOURNAL_POLICY_PATTERN: Final = re.compile(r"off|errors|all|sample:[0-9.eE+-]{1,24}")
"""The forms of a journal policy; the rate itself is checked by ``contract.parse_journal_policy``."""
MAX_UPGRADE_CHECK_ENTRIES: Final = 100
DEFAULT_UPGRADE_CHECK_ENTRIES: Final = 20

_ID: Final = Text(max_len=128, pattern=ID_PATTERN, hint=ID_HINT)
_CONFIG: Final = TextMap(max_items=MAX_CONFIG_ENTRIES, key_pattern=KEY_PATTERN, max_value_len=MAX_CONFIG_VALUE)


@dataclass(frozen=True, slots=True)
class SessionCreate:
    """An API token to exchange for a session cookie."""

    token: Annotated[str, Text(required=True, max_len=256)] = field(repr=False)


@dataclass(frozen=True, slots=True)
class TenantCreate:
    """A new tenant; the id is generated when absent."""

    id: Annotated[str | None, _ID]
    name: Annotated[str, Text(required=True, max_len=200)]


@dataclass(frozen=True, slots=True)
class UserCreate:
    """A new user of the tenant, with roles."""

    email: Annotated[str, Text(required=True, max_len=320, pattern=EMAIL_PATTERN, hint="must be an email address")]
    name: Annotated[str | None, Text(max_len=200)]
    roles: Annotated[list[str], TextList(required=True, choices=tuple(ROLE_PERMISSIONS), max_items=MAX_ROLES)]
    user_type: Annotated[str | None, Choice(USER_TYPES)]
    client_name: Annotated[str | None, Text(max_len=200)]
    client_id: Annotated[str | None, Text(max_len=128)]


@dataclass(frozen=True, slots=True)
class TokenCreate:
    """A new API token for the user; it expires only when expires_in_s is given."""

    name: Annotated[str | None, Text(max_len=200)]
    expires_in_s: Annotated[int | None, Integer(low=MIN_TOKEN_TTL_S, high=MAX_TOKEN_TTL_S)]


@dataclass(frozen=True, slots=True)
class ExtensionRegister:
    """A bundle already published to the store, named by its content hash."""

    content_hash: Annotated[str, Text(required=True, max_len=80)]
    extension_id: Annotated[str | None, _ID]


@dataclass(frozen=True, slots=True)
class VersionPick:
    """A registered version by ``version_id``, ``content_hash`` or ``version`` string (one at most; a version
    string names the newest bundle registered under it)."""

    version_id: Annotated[str | None, Text(max_len=128)]
    content_hash: Annotated[str | None, Text(max_len=80)]
    version: Annotated[str | None, Text(max_len=128)]


@dataclass(frozen=True, slots=True)
class InstallCreate(VersionPick):
    """An install of a registered extension (its newest version unless one is named)."""

    # The hint is the generic one here (unlike TenantCreate.id): that is what this route has always answered.
    extension_id: Annotated[str, Text(required=True, max_len=128, pattern=ID_PATTERN)]
    granted_capabilities: Annotated[list[str] | None, TextList(max_items=MAX_GRANTS)]
    config: Annotated[dict[str, str] | None, _CONFIG]
    enabled: Annotated[bool | None, Flag()]


@dataclass(frozen=True, slots=True)
class InstallUpgrade(VersionPick):
    """The version to move the install to (one of the three is required); held for consent when it asks for
    more than the installed one."""

    reason: Annotated[str | None, Text(max_len=MAX_REASON)]


@dataclass(frozen=True, slots=True)
class ConsentApprove(VersionPick):
    """Approve the upgrade waiting for consent; naming its version (optional) refuses a different one that
    replaced it meanwhile."""

    reason: Annotated[str | None, Text(max_len=MAX_REASON)]


@dataclass(frozen=True, slots=True)
class RollbackRequest:
    """Restore the version the install ran before."""

    reason: Annotated[str | None, Text(max_len=MAX_REASON)]


@dataclass(frozen=True, slots=True)
class ConfigReplace:
    """The install's whole config map."""

    config: Annotated[dict[str, str], TextMap(required=True, max_items=MAX_CONFIG_ENTRIES, key_pattern=KEY_PATTERN,
                                             max_value_len=MAX_CONFIG_VALUE)]


@dataclass(frozen=True, slots=True)
class CapabilitiesReplace:
    """The install's whole list of granted capabilities."""

    capabilities: Annotated[list[str], TextList(required=True, max_items=MAX_GRANTS)]


@dataclass(frozen=True, slots=True)
class SecretsReplace:
    """The install's whole secret map, sealed on arrival, and when the sealed envelope expires."""

    # Plaintext until sealed: kept out of the repr so a logged body shows no value.
    secrets: Annotated[dict[str, str], TextMap(required=True, max_items=MAX_SECRET_ENTRIES, key_pattern=KEY_PATTERN,
                                               max_value_len=MAX_SECRET_VALUE)] = field(repr=False)
    expires_at: Annotated[datetime | None, Timestamp()] = None


MAX_CANARY_TENANTS: Final = 100
MAX_CANARY_WINDOW_S: Final = 7 * 24 * 3600
MAX_CANARY_P99_MS: Final = 600_000.0
MAX_CANARY_MIN_REQUESTS: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class CanaryBudgetBody:
    """What the new version must hold (defaults: 5% errors, 5% timeouts, no p99 limit, judged from 20 requests)."""

    max_error_rate: Annotated[float | None, Number(0, 1)]
    max_timeout_rate: Annotated[float | None, Number(0, 1)]
    max_p99_ms: Annotated[float | None, Number(0, MAX_CANARY_P99_MS, above_low=True)]
    min_requests: Annotated[int | None, Integer(1, MAX_CANARY_MIN_REQUESTS)]


@dataclass(frozen=True, slots=True)
class CanaryCreate:
    """A canary: ``to`` (a version, ``sha256:`` hash or version id) for ``percent`` of ``tenant``'s requests, or
    for every request of ``tenants``."""

    to: Annotated[str, Text(required=True, max_len=128)]
    tenant: Annotated[str | None, _ID]
    percent: Annotated[float | None, Number(0, 100, above_low=True)]
    tenants: Annotated[list[str] | None, TextList(max_items=MAX_CANARY_TENANTS, max_len=128)]
    budget: Annotated[CanaryBudgetBody | None, Nested(CanaryBudgetBody)]
    window_s: Annotated[int | None, Integer(1, MAX_CANARY_WINDOW_S)]


@dataclass(frozen=True, slots=True)
class InstallCanaryCreate:
    """A canary of this install: ``to`` (a version, ``sha256:`` hash or version id) for ``percent`` of its requests."""

    to: Annotated[str, Text(required=True, max_len=128)]
    percent: Annotated[float, Number(0, 100, above_low=True, required=True)]
    budget: Annotated[CanaryBudgetBody | None, Nested(CanaryBudgetBody)]
    window_s: Annotated[int | None, Integer(1, MAX_CANARY_WINDOW_S)]


@dataclass(frozen=True, slots=True)
class JournalPolicySet:
    """Which invocations of the install the runners record: off, errors, all or sample:<rate> (0 < rate <= 1)."""

    policy: Annotated[str, Text(required=True, max_len=32, pattern=JOURNAL_POLICY_PATTERN,
                                hint="must be off, errors, all or sample:<rate>")]


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """Replay a journal entry, against the bundle that recorded it or another registered version."""

    content_hash: Annotated[str | None, Text(max_len=80)]


@dataclass(frozen=True, slots=True)
class UpgradeCheckRequest:
    """Replay the last recorded invocations of the installed version against the version ``to``."""

    to: Annotated[str, Text(required=True, max_len=80)]
    last: Annotated[int | None, Integer(low=1, high=MAX_UPGRADE_CHECK_ENTRIES)]


@dataclass(frozen=True, slots=True)
class TenantSettingsUpdate:
    """Per-tenant settings to change (the others are kept)."""

    require_upgrade_check: Annotated[bool | None, Flag()]


@dataclass(frozen=True, slots=True)
class BudgetItem:
    """A limit on one counter of the tenant per fixed UTC period."""

    name: Annotated[str, Choice(BUDGET_NAMES, required=True)]
    period: Annotated[str, Choice(BUDGET_PERIODS, required=True)]
    limit: Annotated[float, Number(0, MAX_BUDGET_LIMIT, required=True)]


@dataclass(frozen=True, slots=True)
class BudgetsReplace:
    """The tenant's whole list of budgets: a limit per counter and UTC period, enforced before each call."""

    budgets: Annotated[list[BudgetItem], ModelList(BudgetItem, required=True, max_items=MAX_BUDGETS)]


BODIES: Final = (SessionCreate, TenantCreate, UserCreate, TokenCreate, ExtensionRegister, InstallCreate,
                 InstallUpgrade, ConfigReplace, CapabilitiesReplace, SecretsReplace, ConsentApprove, RollbackRequest,
                 CanaryCreate, InstallCanaryCreate,
                 JournalPolicySet, ReplayRequest, UpgradeCheckRequest, TenantSettingsUpdate,
                 BudgetsReplace)
"""Every request body model, in the order the OpenAPI document lists them."""
