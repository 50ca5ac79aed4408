"""Gateway settings: one frozen dataclass, built from the environment through a typed table.

Every variable the gateway reads is a row of :data:`TABLE` (a ``servicekit.SettingsTable``, the mechanism the
runner's settings use too) with its parser, default and a line of documentation; the gateway's table in
``docs/configuration.md`` is generated from it (``python -m servicekit docs/configuration.md``). Every
``GATEWAY_*`` and ``EXT_GATEWAY_*`` variable must be one the table knows, and every value must parse: a typo
stops start-up with a message naming the setting instead of being silently ignored.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Final

from bundles import TrustBundle, TrustBundleError
from contract import MAX_GUEST_BODY_BYTES, SAFE_ID_PATTERN
from journal import JournalError, JournalKeyring
from servicekit import (
    DEVELOPMENT,
    POSTGRES_SCHEMES,
    REDIS_SCHEMES,
    REQUIRED,
    InvalidSetting,
    Mode,
    Requirement,
    Setting,
    SettingsTable,
    backend_url,
    boolean,
    enforce_mode,
    host_port,
    integer,
    log_format,
    mode,
    optional_text,
    text,
)

from ._errors import SettingsError

DEFAULT_BIND: Final = "127.0.0.1:8000"
DEFAULT_TIMEOUT_MS: Final = 30_000
MAX_TIMEOUT_MS: Final = 600_000
DEFAULT_REGISTRY_DATABASE: Final = "./var/registry.sqlite3"
DEFAULT_MAX_BODY_BYTES: Final = MAX_GUEST_BODY_BYTES
"""The runner's own request-body cap (``RUNNER_MAX_REQUEST_BODY_BYTES``' default): a larger body would only be
refused one hop later, under another number."""
MAX_BODY_BYTES: Final = 1024 * 1024 * 1024
DEFAULT_RATE_LIMIT_RPS: Final = 50.0
DEFAULT_RATE_LIMIT_BURST: Final = 100
MAX_RATE_LIMIT_BURST: Final = 1_000_000
DEFAULT_RUNNER_ATTEMPTS: Final = 3
MAX_RUNNER_ATTEMPTS: Final = 10
DEFAULT_SESSION_TTL_S: Final = 8 * 3600
MIN_SESSION_TTL_S: Final = 60
MAX_SESSION_TTL_S: Final = 30 * 24 * 3600
MIN_SECRET_LENGTH: Final = 16
DEFAULT_AUTH_CACHE_TTL_S: Final = 2.0
MAX_AUTH_CACHE_TTL_S: Final = 300.0
DEFAULT_DRAIN_TIMEOUT_S: Final = 10
DEFAULT_DEBUG_STREAM_PREFIX: Final = "ext-debug:"
DEFAULT_UI_URL_TTL_S: Final = 600
"""How long a signed ``/ext-ui`` URL stays valid: the frame and the assets it loads at once fit easily; a UI
that loads code lazily after that long needs the page reloaded (docs/ui.md)."""
MIN_UI_URL_TTL_S: Final = 10
DEFAULT_CANARY_INTERVAL_S: Final = 1.0
"""How often the running canaries are reloaded and judged: a breached budget is rolled back within about this."""
MAX_UI_URL_TTL_S: Final = 24 * 3600
DEFAULT_JOURNAL_RETENTION_DAYS: Final = 14
MAX_JOURNAL_RETENTION_DAYS: Final = 3650
DEFAULT_JOURNAL_PREFIX: Final = "journal"
DEFAULT_USAGE_FLUSH_INTERVAL_S: Final = 1.0
DEFAULT_USAGE_MAX_PENDING_ROWS: Final = 100_000
DEFAULT_USAGE_RETENTION_DAYS: Final = 400
DEFAULT_BUDGET_CACHE_TTL_S: Final = 5.0

_PREFIXES: Final = ("GATEWAY_", "EXT_GATEWAY_")
_TENANT_ID_RE: Final = SAFE_ID_PATTERN


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _url(value: str) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{value!r} must not carry credentials, a query or a fragment")
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ValueError(f"{value!r} has an invalid port") from None
    return value.rstrip("/")


def _urls(value: str) -> tuple[str, ...]:
    return tuple(_url(part) for part in _split(value))


def _origins(value: str) -> tuple[str, ...]:
    origins = []
    for part in _split(value):
        url = _url(part)
        if urllib.parse.urlsplit(url).path:
            raise ValueError(f"{part!r} must be an origin (no path)")
        origins.append(url.lower())
    return tuple(origins)


def _rate(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not 0 < number < 1e9:
        raise ValueError(f"{value!r} must be a positive number")
    return number


def _auth_cache_ttl(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not 0 <= number <= MAX_AUTH_CACHE_TTL_S:
        raise ValueError(f"{value!r} is outside 0..{MAX_AUTH_CACHE_TTL_S:g} seconds")
    return number


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return parse


def _interval(value: str) -> float:
    seconds = float(value)
    if not 0 <= seconds <= 300:
        raise ValueError("must be between 0 and 300 seconds")
    return seconds


def _seconds(low: float, high: float) -> Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        if not low <= number <= high:
            raise ValueError(f"must be between {low:g} and {high:g} seconds")
        return number

    return parse


def _secret(value: str) -> str:
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters")
    return value


def _public_key(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None
    if len(raw) != 32:
        raise ValueError("must be a raw 32-byte X25519 key in base64")
    return value


def _tenant_id(value: str) -> str:
    if not _TENANT_ID_RE.fullmatch(value):
        raise ValueError("must be 1-128 characters of A-Z a-z 0-9 . _ -")
    return value


def _trust_bundle(value: str) -> TrustBundle:
    try:
        return TrustBundle.from_file(value)
    except TrustBundleError as exc:
        raise ValueError(exc.message) from None


def _journal_keys(value: str) -> JournalKeyring:
    try:
        return JournalKeyring.parse(value)
    except JournalError as exc:
        raise ValueError(str(exc)) from None


_LABEL_VALUE_RE: Final = re.compile("[a-z0-9]+(?:-[a-z0-9]+)*")
_PLACEHOLDER_RE: Final = re.compile(r"\{([a-z]+)\}")
_UI_PLACEHOLDERS: Final = ("extension", "tenant")


@dataclass(frozen=True)
class UiOriginTemplate:
    """``EXT_UI_ORIGIN_TEMPLATE``, as the runner reads it (``runner_trio``'s ``UiOriginTemplate`` holds the
    matching side; ``tests/browser`` checks that both agree): host labels of ``{extension}``, ``{tenant}`` and
    literal text (``[a-z0-9]`` and single hyphens) joined by ``.`` or ``--``, each placeholder once."""

    template: str

    @classmethod
    def parse(cls, value: str) -> UiOriginTemplate:
        parts = urllib.parse.urlsplit(value.strip())
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"{value!r} must start with http:// or https://")
        if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
            raise ValueError(f"{value!r} must be an origin: no path, query, fragment or credentials")
        host, _, port = parts.netloc.lower().partition(":")
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"{value!r} has an invalid port")
        seen = []
        for piece in (piece for label in host.split(".") for piece in label.split("--")):
            found = _PLACEHOLDER_RE.fullmatch(piece)
            if found and found.group(1) in _UI_PLACEHOLDERS:
                seen.append(found.group(1))
            elif not _LABEL_VALUE_RE.fullmatch(piece):
                raise ValueError(f"{piece!r} in {value!r}: each host label is {{extension}}, {{tenant}} or "
                                 "lower-case letters, digits and single hyphens, joined by '--'")
        if sorted(seen) != sorted(_UI_PLACEHOLDERS):
            raise ValueError(f"{value!r} must hold {{extension}} and {{tenant}} once each, in the host")
        return cls(f"{parts.scheme}://{host}" + (f":{port}" if port else ""))

    def origin_for(self, tenant: str, extension: str) -> str | None:
        """The origin of (tenant, extension)'s UI; None when an id cannot be a host label (no isolated origin)."""
        if not (_LABEL_VALUE_RE.fullmatch(tenant) and _LABEL_VALUE_RE.fullmatch(extension)):
            return None
        origin = self.template.replace("{tenant}", tenant).replace("{extension}", extension)
        host = urllib.parse.urlsplit(origin).hostname or ""
        if len(host) > 253 or any(len(label) > 63 for label in host.split(".")):
            return None
        return origin


TABLE: Final = SettingsTable(
    [
        Setting("RUNNER_BASE_URL", "runner_base_urls", _urls, REQUIRED,
                "the runner's internal URL, comma-separated for many"),
        Setting("GATEWAY_ENV", "env", mode, DEVELOPMENT,
                "development or production: production refuses to start without the checklist of docs/security.md"),
        Setting("GATEWAY_BIND", "bind", host_port(allow_unix=True), DEFAULT_BIND,
                "address the gateway listens on (host:port or unix:path); beyond loopback it needs "
                "RUNNER_SERVICE_TOKEN"),
        Setting("RUNNER_SERVICE_TOKEN", "runner_service_token", optional_text, None,
                "bearer token for the runner's /v1/* and for the runner calling /api/installs/validate"),
        Setting("EXT_GATEWAY_TIMEOUT_MS", "timeout_ms", integer(1, MAX_TIMEOUT_MS), DEFAULT_TIMEOUT_MS,
                "deadline of one extension call, also sent to the runner as limits.timeout_ms"),
        Setting("EXT_GATEWAY_ALLOWED_ORIGINS", "allowed_origins", _origins, (),
                "browser origins (scheme://host[:port], comma-separated) allowed to call /api/ext with credentials"),
        Setting("REGISTRY_DATABASE", "registry_database",
                backend_url("sqlite", *POSTGRES_SCHEMES, allow_path=True), DEFAULT_REGISTRY_DATABASE,
                "the registry: a SQLite file (path or sqlite:///path) or postgresql://user@host:port/db"),
        Setting("RUNNER_PUBLIC_BASE", "runner_public_base", _url, None,
                "the runner's public base for /ext-ui redirects (default the first runner URL)"),
        Setting("EXT_UI_ORIGIN_TEMPLATE", "ui_origin_template", UiOriginTemplate.parse, None,
                "one origin per install for UIs, as the runner's (docs/ui.md); unset: the runner's shared origin"),
        Setting("EXT_UI_SIGNING_KEY", "ui_signing_key", _secret, None,
                "HMAC key of signed /ext-ui URLs, the runners' too (at least 16 characters); unset: unsigned URLs, "
                "which a runner with a key refuses"),
        Setting("GATEWAY_UI_URL_TTL_S", "ui_url_ttl_s", integer(MIN_UI_URL_TTL_S, MAX_UI_URL_TTL_S),
                DEFAULT_UI_URL_TTL_S, "lifetime of a signed /ext-ui URL"),
        Setting("RUNNER_SECRETS_PUBLIC_KEY", "runner_secrets_public_key", _public_key, None,
                "X25519 public key (base64) that tenant secrets are sealed to"),
        Setting("DEV_TENANT_ID", "dev_tenant_id", _tenant_id, None,
                "a tenant created at start-up when missing, for development"),
        Setting("BUNDLE_STORE_BASE", "bundle_store_base", backend_url("file", "s3"), None,
                "file:///dir or s3://bucket/prefix that published bundles are read from when registering"),
        Setting("SIGNING_TRUST_BUNDLE", "trust_bundle", _trust_bundle, None,
                "the runners' trust bundle (PEM file): register and install refuse a bundle it does not verify"),
        Setting("GATEWAY_ADMIN_TOKEN", "admin_token", _secret, None,
                "bearer token of the admin API (at least 16 characters); unset disables it"),
        Setting("GATEWAY_METRICS_TOKEN", "metrics_token", _secret, None,
                "bearer token a Prometheus scraper sends for GET /metrics (at least 16 characters); unset "
                "disables /metrics"),
        Setting("GATEWAY_SESSION_SECRET", "session_secret", _secret, None,
                "key that signs session cookies (at least 16 characters); unset: a random key per process"),
        Setting("GATEWAY_SESSION_TTL_S", "session_ttl_s", integer(MIN_SESSION_TTL_S, MAX_SESSION_TTL_S),
                DEFAULT_SESSION_TTL_S, "lifetime of a session cookie"),
        Setting("GATEWAY_SESSION_COOKIE_SECURE", "session_cookie_secure", boolean, False,
                "mark the session cookie Secure"),
        Setting("GATEWAY_RATE_LIMIT_RPS", "rate_limit_rps", _rate, DEFAULT_RATE_LIMIT_RPS,
                "token-bucket refill per second per (tenant, extension)"),
        Setting("GATEWAY_RATE_LIMIT_BURST", "rate_limit_burst", integer(1, MAX_RATE_LIMIT_BURST),
                DEFAULT_RATE_LIMIT_BURST, "token-bucket size"),
        Setting("GATEWAY_MAX_BODY_BYTES", "max_body_bytes", integer(1, MAX_BODY_BYTES), DEFAULT_MAX_BODY_BYTES,
                "request body cap of /api/ext; defaults to the runner's (RUNNER_MAX_REQUEST_BODY_BYTES, 2 MiB)"),
        Setting("GATEWAY_RUNNER_ATTEMPTS", "runner_attempts", integer(1, MAX_RUNNER_ATTEMPTS),
                DEFAULT_RUNNER_ATTEMPTS, "attempts per runner call, retries included"),
        Setting("GATEWAY_AUTH_CACHE_TTL_S", "auth_cache_ttl_s", _auth_cache_ttl, DEFAULT_AUTH_CACHE_TTL_S,
                "seconds a token's user and a tenant's install are reused from memory (0 disables; see below)"),
        Setting("GATEWAY_LOG_FORMAT", "log_format", log_format, "text",
                "text, or json: one JSON object per line"),
        Setting("GATEWAY_DRAIN_TIMEOUT_S", "drain_timeout_s", integer(0), DEFAULT_DRAIN_TIMEOUT_S,
                "on SIGTERM, how long in-flight requests may finish"),
        Setting("GATEWAY_RUNNER_DISCOVERY", "runner_discovery", _one_of("static", "dns"), "static",
                "static: RUNNER_BASE_URL as listed; dns: each URL's host resolved to all its addresses (a "
                "headless Service), re-resolved every 5 s"),
        Setting("GATEWAY_RUNNER_AFFINITY", "runner_affinity", _one_of("round-robin", "content-hash"),
                "round-robin", "order of runners per call: round-robin, or content-hash (rendezvous hashing: "
                "each bundle's calls go to the same runner first, keeping its caches hot)"),
        Setting("GATEWAY_RUNNER_HEALTH_INTERVAL_S", "runner_health_interval_s", _interval, 2.0,
                "how often every runner's /readyz is polled; a not-ready runner is tried last (0: never)"),
        Setting("GATEWAY_REDIS_URL", "redis_url", backend_url(*REDIS_SCHEMES), None,
                "Redis shared by a fleet of gateways: rate-limit buckets and revocations (unset: per process)"),
        Setting("DEBUG_STREAM_REDIS_URL", "debug_redis_url", backend_url(*REDIS_SCHEMES), None,
                "Redis holding the runners' debug streams, for /api/ext-debug/stream (unset: 503 there)"),
        Setting("RUNNER_DEBUG_REDIS_STREAM_PREFIX", "debug_stream_prefix", text, DEFAULT_DEBUG_STREAM_PREFIX,
                "the runners' debug stream key prefix"),
        Setting("GATEWAY_JOURNAL_KEYS", "journal_keys", _journal_keys, None,
                "the runners' RUNNER_JOURNAL_KEYS (kid:<base64 32 bytes>, comma-separated): reading journal entries "
                "for the admin API (unset: entries cannot be downloaded, 503 journal_unavailable)"),
        Setting("GATEWAY_JOURNAL_STORE", "journal_store", backend_url("file", "s3"), None,
                "file:///dir or s3://bucket/prefix the runners write journal entries to (default BUNDLE_STORE_BASE)"),
        Setting("GATEWAY_JOURNAL_PREFIX", "journal_prefix", text, DEFAULT_JOURNAL_PREFIX,
                "key prefix of journal entries in that store, the runners' RUNNER_JOURNAL_PREFIX"),
        Setting("GATEWAY_JOURNAL_RETENTION_DAYS", "journal_retention_days",
                integer(1, MAX_JOURNAL_RETENTION_DAYS), DEFAULT_JOURNAL_RETENTION_DAYS,
                "days a journal entry is kept; the gateway's sweeper then deletes its index row and its object"),
        Setting("GATEWAY_CANARY_INTERVAL_S", "canary_interval_s", _interval, DEFAULT_CANARY_INTERVAL_S,
                "how often running canaries are reloaded and judged against their budget (0: never; "
                "docs/operations.md)"),
        Setting("GATEWAY_USAGE_FLUSH_INTERVAL_S", "usage_flush_interval_s", _seconds(0.05, 60),
                DEFAULT_USAGE_FLUSH_INTERVAL_S, "how often usage sums are written to the registry (a crash loses "
                "at most this much accounting; docs/operations.md)"),
        Setting("GATEWAY_USAGE_MAX_PENDING_ROWS", "usage_max_pending_rows", integer(1, 10_000_000),
                DEFAULT_USAGE_MAX_PENDING_ROWS, "(tenant, extension, minute) usage sums held in memory at most; "
                "beyond, answers are not accounted (and counted as dropped)"),
        Setting("GATEWAY_USAGE_RETENTION_DAYS", "usage_retention_days", integer(0, 3650),
                DEFAULT_USAGE_RETENTION_DAYS, "days usage rows (the billing record) are kept; the gateway deletes "
                "older minutes hourly (0: keep them forever)"),
        Setting("GATEWAY_BUDGET_CACHE_TTL_S", "budget_cache_ttl_s", _seconds(0, 300), DEFAULT_BUDGET_CACHE_TTL_S,
                "seconds a tenant's budgets are reused from memory (other gateways see a change after this)"),
    ],
    owned_prefixes=_PREFIXES,
    # Values are stripped and a blank one counts as unset (as the hand-written loader did before the table).
    blank_is_unset=True,
)
"""Every variable the gateway reads: name, parser, default and one line of documentation."""

ENV_VARS: Final = TABLE.names
"""Every variable :func:`load_settings` reads."""


@dataclass(frozen=True)
class Settings:
    """Everything the gateway is configured with.

    Build it with :meth:`from_env` (or :func:`load_settings`), or directly in tests. Each attribute is set by
    one variable of :data:`TABLE`, whose rows say what it means; ``runner_base_urls`` (``RUNNER_BASE_URL``)
    is the only one without a default.
    """

    TABLE: ClassVar[SettingsTable] = TABLE

    runner_base_urls: tuple[str, ...]
    env: Mode = DEVELOPMENT
    bind: str = DEFAULT_BIND
    runner_service_token: str | None = None
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    allowed_origins: tuple[str, ...] = ()
    registry_database: str = DEFAULT_REGISTRY_DATABASE
    runner_public_base: str | None = None
    ui_origin_template: UiOriginTemplate | None = None
    ui_signing_key: str | None = None
    ui_url_ttl_s: int = DEFAULT_UI_URL_TTL_S
    runner_secrets_public_key: str | None = None
    dev_tenant_id: str | None = None
    bundle_store_base: str | None = None
    trust_bundle: TrustBundle | None = None
    admin_token: str | None = None
    metrics_token: str | None = None
    session_secret: str | None = None
    session_ttl_s: int = DEFAULT_SESSION_TTL_S
    session_cookie_secure: bool = False
    rate_limit_rps: float = DEFAULT_RATE_LIMIT_RPS
    rate_limit_burst: int = DEFAULT_RATE_LIMIT_BURST
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    runner_attempts: int = DEFAULT_RUNNER_ATTEMPTS
    auth_cache_ttl_s: float = DEFAULT_AUTH_CACHE_TTL_S
    redis_url: str | None = None
    debug_redis_url: str | None = None
    debug_stream_prefix: str = DEFAULT_DEBUG_STREAM_PREFIX
    drain_timeout_s: int = DEFAULT_DRAIN_TIMEOUT_S
    log_format: str = "text"
    runner_discovery: str = "static"
    runner_affinity: str = "round-robin"
    runner_health_interval_s: float = 2.0
    journal_keys: JournalKeyring | None = None
    journal_store: str | None = None
    journal_prefix: str = DEFAULT_JOURNAL_PREFIX
    journal_retention_days: int = DEFAULT_JOURNAL_RETENTION_DAYS
    canary_interval_s: float = DEFAULT_CANARY_INTERVAL_S
    usage_flush_interval_s: float = DEFAULT_USAGE_FLUSH_INTERVAL_S
    usage_max_pending_rows: int = DEFAULT_USAGE_MAX_PENDING_ROWS
    usage_retention_days: int = DEFAULT_USAGE_RETENTION_DAYS
    budget_cache_ttl_s: float = DEFAULT_BUDGET_CACHE_TTL_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default ``os.environ``).

        Raises:
            SettingsError: a ``GATEWAY_*``/``EXT_GATEWAY_*`` variable is unknown, or a value is invalid or
                missing; ``.setting`` names it.
        """
        try:
            values = TABLE.read(os.environ if environ is None else environ)
        except InvalidSetting as exc:
            raise SettingsError(exc.setting, exc.message) from None
        return cls(**values)

    def __post_init__(self) -> None:
        if not self.runner_base_urls:
            raise SettingsError("RUNNER_BASE_URL", "at least one runner URL is required")
        try:
            enforce_mode(
                self.env,
                mode_setting="GATEWAY_ENV",
                bind=self.bind,
                bind_setting="GATEWAY_BIND",
                token_setting="RUNNER_SERVICE_TOKEN",  # noqa: S106 (a variable name)
                has_token=self.runner_service_token is not None,
                production=self._production_requirements(),
            )
        except InvalidSetting as exc:
            raise SettingsError(exc.setting, exc.message) from None

    def _production_requirements(self) -> tuple[Requirement, ...]:
        """What GATEWAY_ENV=production insists on (docs/security.md's checklist), in the order it is checked."""
        return (
            Requirement("RUNNER_SERVICE_TOKEN", self.runner_service_token is not None,
                        "must be set: the runners' /v1/* and the install check need it"),
            Requirement("EXT_UI_SIGNING_KEY", self.ui_signing_key is not None,
                        "must be set: the runners serve only /ext-ui URLs signed with it"),
            Requirement("GATEWAY_SESSION_SECRET", self.session_secret is not None,
                        "must be set: a per-process random key logs everyone out on restart and differs "
                        "between gateways"),
            Requirement("GATEWAY_SESSION_COOKIE_SECURE", self.session_cookie_secure,
                        "must be true: a session cookie must never travel over plain HTTP"),
            Requirement("DEV_TENANT_ID", self.dev_tenant_id is None,
                        "must not be set: it creates a tenant at start-up, for development only"),
        )

    @property
    def public_runner_base(self) -> str:
        """Base URL that browsers reach the runner's ``/ext-ui`` at."""
        return self.runner_public_base or self.runner_base_urls[0]

    def __repr__(self) -> str:
        # Tokens and keys stay out of logs and tracebacks.
        return (
            f"Settings(bind={self.bind!r}, runner_base_urls={self.runner_base_urls!r}, "
            f"registry_database={self.registry_database!r}, timeout_ms={self.timeout_ms})"
        )


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build :class:`Settings` from ``environ`` (the same as :meth:`Settings.from_env`).

    Raises:
        SettingsError: a ``GATEWAY_*``/``EXT_GATEWAY_*`` variable is unknown, or a value is invalid;
            ``.setting`` names it.
    """
    return Settings.from_env(environ)
