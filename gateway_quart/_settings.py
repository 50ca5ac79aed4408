"""Gateway settings: one frozen dataclass, built from the environment by :func:`load_settings`.

Every ``GATEWAY_*`` and ``EXT_GATEWAY_*`` variable must be one this module knows, and every value must parse:
a typo stops start-up with a message naming the setting instead of being silently ignored.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from contract import SAFE_ID_PATTERN

from ._errors import SettingsError

DEFAULT_BIND: Final = "127.0.0.1:8000"
DEFAULT_TIMEOUT_MS: Final = 30_000
MAX_TIMEOUT_MS: Final = 600_000
DEFAULT_REGISTRY_DATABASE: Final = "./var/registry.sqlite3"
DEFAULT_MAX_BODY_BYTES: Final = 10 * 1024 * 1024
DEFAULT_RATE_LIMIT_RPS: Final = 50.0
DEFAULT_RATE_LIMIT_BURST: Final = 100
DEFAULT_RUNNER_ATTEMPTS: Final = 3
MAX_RUNNER_ATTEMPTS: Final = 10
DEFAULT_SESSION_TTL_S: Final = 8 * 3600
MIN_SECRET_LENGTH: Final = 16
DEFAULT_AUTH_CACHE_TTL_S: Final = 2.0
MAX_AUTH_CACHE_TTL_S: Final = 300.0

_PREFIXES: Final = ("GATEWAY_", "EXT_GATEWAY_")
ENV_VARS: Final = frozenset(
    {
        "GATEWAY_BIND",
        "GATEWAY_ADMIN_TOKEN",
        "GATEWAY_SESSION_SECRET",
        "GATEWAY_SESSION_TTL_S",
        "GATEWAY_SESSION_COOKIE_SECURE",
        "GATEWAY_RATE_LIMIT_RPS",
        "GATEWAY_RATE_LIMIT_BURST",
        "GATEWAY_MAX_BODY_BYTES",
        "GATEWAY_RUNNER_ATTEMPTS",
        "GATEWAY_AUTH_CACHE_TTL_S",
        "EXT_GATEWAY_TIMEOUT_MS",
        "EXT_GATEWAY_ALLOWED_ORIGINS",
        "RUNNER_BASE_URL",
        "RUNNER_SERVICE_TOKEN",
        "RUNNER_PUBLIC_BASE",
        "RUNNER_SECRETS_PUBLIC_KEY",
        "REGISTRY_DATABASE",
        "DEV_TENANT_ID",
        "BUNDLE_STORE_BASE",
        "DEBUG_STREAM_REDIS_URL",
        "RUNNER_DEBUG_REDIS_STREAM_PREFIX",
    }
)
"""Every variable :func:`load_settings` reads."""

_BOOLEANS: Final = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
_TENANT_ID_RE: Final = SAFE_ID_PATTERN


@dataclass(frozen=True)
class Settings:
    """Everything the gateway is configured with.

    Attributes:
        runner_base_urls: the runners' internal base URLs (``RUNNER_BASE_URL``, comma-separated).
        bind: ``host:port`` to listen on (``GATEWAY_BIND``).
        runner_service_token: bearer token for the runner's ``/v1/*`` and for the runner calling
            ``/api/installs/validate`` (``RUNNER_SERVICE_TOKEN``).
        timeout_ms: deadline of one extension call, also sent as ``limits.timeout_ms``
            (``EXT_GATEWAY_TIMEOUT_MS``).
        allowed_origins: browser origins allowed to call ``/api/ext`` cross-origin with credentials
            (``EXT_GATEWAY_ALLOWED_ORIGINS``, comma-separated ``scheme://host[:port]``).
        registry_database: SQLite file of the registry (``REGISTRY_DATABASE``).
        runner_public_base: the runner's public base for ``/ext-ui`` redirects (``RUNNER_PUBLIC_BASE``;
            defaults to the first runner URL).
        runner_secrets_public_key: X25519 key that tenant secrets are sealed to (``RUNNER_SECRETS_PUBLIC_KEY``).
        dev_tenant_id: a tenant created at start-up when missing, for development (``DEV_TENANT_ID``).
        bundle_store_base: where published bundles are read from when registering (``BUNDLE_STORE_BASE``).
        admin_token: bearer token of the admin API (``GATEWAY_ADMIN_TOKEN``); unset disables it.
        session_secret: key that signs session cookies (``GATEWAY_SESSION_SECRET``); unset means a random key
            per process, so sessions end on restart.
        session_ttl_s: lifetime of a session cookie (``GATEWAY_SESSION_TTL_S``).
        session_cookie_secure: mark the session cookie ``Secure`` (``GATEWAY_SESSION_COOKIE_SECURE``).
        rate_limit_rps: token-bucket refill per (tenant, extension) (``GATEWAY_RATE_LIMIT_RPS``).
        rate_limit_burst: token-bucket size (``GATEWAY_RATE_LIMIT_BURST``).
        max_body_bytes: request body cap of ``/api/ext`` (``GATEWAY_MAX_BODY_BYTES``).
        runner_attempts: attempts per runner call, retries included (``GATEWAY_RUNNER_ATTEMPTS``).
        auth_cache_ttl_s: how long a token's user and a tenant's active install, once looked up, are reused
            from memory (``GATEWAY_AUTH_CACHE_TTL_S``; ``0`` looks them up on every call). The admin API's
            changes apply at once in the process that made them; other gateway processes on the same database
            see them (a revoked token, a disabled install) within this TTL.
        debug_redis_url: Redis holding the runners' debug streams, for ``/api/ext-debug/stream``
            (``DEBUG_STREAM_REDIS_URL``); unset answers 503 there.
        debug_stream_prefix: the runners' stream key prefix (``RUNNER_DEBUG_REDIS_STREAM_PREFIX``).
    """

    runner_base_urls: tuple[str, ...]
    bind: str = DEFAULT_BIND
    runner_service_token: str | None = None
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    allowed_origins: tuple[str, ...] = ()
    registry_database: str = DEFAULT_REGISTRY_DATABASE
    runner_public_base: str | None = None
    runner_secrets_public_key: str | None = None
    dev_tenant_id: str | None = None
    bundle_store_base: str | None = None
    admin_token: str | None = None
    session_secret: str | None = None
    session_ttl_s: int = DEFAULT_SESSION_TTL_S
    session_cookie_secure: bool = False
    rate_limit_rps: float = DEFAULT_RATE_LIMIT_RPS
    rate_limit_burst: int = DEFAULT_RATE_LIMIT_BURST
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    runner_attempts: int = DEFAULT_RUNNER_ATTEMPTS
    auth_cache_ttl_s: float = DEFAULT_AUTH_CACHE_TTL_S
    debug_redis_url: str | None = None
    debug_stream_prefix: str = "ext-debug:"

    def __post_init__(self) -> None:
        if not self.runner_base_urls:
            raise SettingsError("RUNNER_BASE_URL", "at least one runner URL is required")

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
    """Build :class:`Settings` from ``environ``.

    Raises:
        SettingsError: a ``GATEWAY_*``/``EXT_GATEWAY_*`` variable is unknown, or a value is invalid;
            ``.setting`` names it.
    """
    for name in sorted(environ):
        if name.startswith(_PREFIXES) and name not in ENV_VARS:
            raise SettingsError(name, f"unknown setting (known: {', '.join(sorted(ENV_VARS))})")

    def get(name: str) -> str | None:
        value = environ.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    runners = get("RUNNER_BASE_URL")
    if runners is None:
        raise SettingsError("RUNNER_BASE_URL", "is required (the runner's internal URL, comma-separated for many)")
    public_key = get("RUNNER_SECRETS_PUBLIC_KEY")
    if public_key is not None:
        _check_public_key(public_key)
    dev_tenant = get("DEV_TENANT_ID")
    if dev_tenant is not None and not _TENANT_ID_RE.fullmatch(dev_tenant):
        raise SettingsError("DEV_TENANT_ID", "must be 1-128 characters of A-Z a-z 0-9 . _ -")
    store = get("BUNDLE_STORE_BASE")
    if store is not None and not store.startswith(("file://", "s3://")):
        raise SettingsError("BUNDLE_STORE_BASE", "must be a file:// or s3:// URL")
    public_base = get("RUNNER_PUBLIC_BASE")

    return Settings(
        runner_base_urls=tuple(_url("RUNNER_BASE_URL", part) for part in _split(runners)),
        bind=_bind(get("GATEWAY_BIND") or DEFAULT_BIND),
        runner_service_token=get("RUNNER_SERVICE_TOKEN"),
        timeout_ms=_int("EXT_GATEWAY_TIMEOUT_MS", get("EXT_GATEWAY_TIMEOUT_MS"), DEFAULT_TIMEOUT_MS,
                        low=1, high=MAX_TIMEOUT_MS),
        allowed_origins=tuple(_origin(o) for o in _split(get("EXT_GATEWAY_ALLOWED_ORIGINS") or "")),
        registry_database=get("REGISTRY_DATABASE") or DEFAULT_REGISTRY_DATABASE,
        runner_public_base=_url("RUNNER_PUBLIC_BASE", public_base) if public_base else None,
        runner_secrets_public_key=public_key,
        dev_tenant_id=dev_tenant,
        bundle_store_base=store,
        admin_token=_secret("GATEWAY_ADMIN_TOKEN", get("GATEWAY_ADMIN_TOKEN")),
        session_secret=_secret("GATEWAY_SESSION_SECRET", get("GATEWAY_SESSION_SECRET")),
        session_ttl_s=_int("GATEWAY_SESSION_TTL_S", get("GATEWAY_SESSION_TTL_S"), DEFAULT_SESSION_TTL_S,
                           low=60, high=30 * 24 * 3600),
        session_cookie_secure=_bool("GATEWAY_SESSION_COOKIE_SECURE", get("GATEWAY_SESSION_COOKIE_SECURE")),
        rate_limit_rps=_float("GATEWAY_RATE_LIMIT_RPS", get("GATEWAY_RATE_LIMIT_RPS"), DEFAULT_RATE_LIMIT_RPS),
        rate_limit_burst=_int("GATEWAY_RATE_LIMIT_BURST", get("GATEWAY_RATE_LIMIT_BURST"),
                              DEFAULT_RATE_LIMIT_BURST, low=1, high=1_000_000),
        max_body_bytes=_int("GATEWAY_MAX_BODY_BYTES", get("GATEWAY_MAX_BODY_BYTES"), DEFAULT_MAX_BODY_BYTES,
                            low=1, high=1024 * 1024 * 1024),
        runner_attempts=_int("GATEWAY_RUNNER_ATTEMPTS", get("GATEWAY_RUNNER_ATTEMPTS"), DEFAULT_RUNNER_ATTEMPTS,
                             low=1, high=MAX_RUNNER_ATTEMPTS),
        auth_cache_ttl_s=_ttl("GATEWAY_AUTH_CACHE_TTL_S", get("GATEWAY_AUTH_CACHE_TTL_S"),
                              DEFAULT_AUTH_CACHE_TTL_S, high=MAX_AUTH_CACHE_TTL_S),
        debug_redis_url=get("DEBUG_STREAM_REDIS_URL"),
        debug_stream_prefix=get("RUNNER_DEBUG_REDIS_STREAM_PREFIX") or "ext-debug:",
    )


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _url(setting: str, value: str) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(setting, f"{value!r} is not an http(s) URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise SettingsError(setting, f"{value!r} must not carry credentials, a query or a fragment")
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise SettingsError(setting, f"{value!r} has an invalid port") from None
    return value.rstrip("/")


def _origin(value: str) -> str:
    url = _url("EXT_GATEWAY_ALLOWED_ORIGINS", value)
    if urllib.parse.urlsplit(url).path:
        raise SettingsError("EXT_GATEWAY_ALLOWED_ORIGINS", f"{value!r} must be an origin (no path)")
    return url.lower()


def _bind(value: str) -> str:
    if value.startswith("unix:"):
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise SettingsError("GATEWAY_BIND", f"{value!r} must be host:port")
    return value


def _int(setting: str, value: str | None, default: int, *, low: int, high: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(setting, f"{value!r} is not an integer") from None
    if not low <= number <= high:
        raise SettingsError(setting, f"{number} is outside {low}..{high}")
    return number


def _float(setting: str, value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(setting, f"{value!r} is not a number") from None
    if not 0 < number < 1e9:
        raise SettingsError(setting, f"{value!r} must be a positive number")
    return number


def _ttl(setting: str, value: str | None, default: float, *, high: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(setting, f"{value!r} is not a number") from None
    if not 0 <= number <= high:
        raise SettingsError(setting, f"{value!r} is outside 0..{high:g} seconds")
    return number


def _bool(setting: str, value: str | None) -> bool:
    if value is None:
        return False
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        raise SettingsError(setting, f"{value!r} is not a boolean (true/false)") from None


def _secret(setting: str, value: str | None) -> str | None:
    if value is not None and len(value) < MIN_SECRET_LENGTH:
        raise SettingsError(setting, f"must be at least {MIN_SECRET_LENGTH} characters")
    return value


def _check_public_key(value: str) -> None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError("RUNNER_SECRETS_PUBLIC_KEY", "is not valid base64") from None
    if len(raw) != 32:
        raise SettingsError("RUNNER_SECRETS_PUBLIC_KEY", "must be a raw 32-byte X25519 key in base64")
