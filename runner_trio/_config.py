"""Runner settings, read once from the environment.

Every setting is declared in ``_SETTINGS`` with its parser, default and a line of documentation (a
``servicekit.SettingsTable``, the mechanism the gateway's settings use too); the runner's table in
``docs/configuration.md`` is generated from it (``python -m servicekit docs/configuration.md``).
``Settings.from_env`` refuses unknown variables in the runner's namespaces and invalid values with a message
that names the variable, so a typo stops start-up instead of silently running with a default.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final

import contract
from contract import ContentHashError, parse_content_hash
from servicekit import (
    DEVELOPMENT,
    POSTGRES_SCHEMES,
    PRODUCTION,
    REDIS_SCHEMES,
    InvalidSetting,
    Mode,
    Requirement,
    SettingsTable,
    backend_url,
    enforce_mode,
    host_port,
    log_format,
)
from servicekit import Setting as _Setting
from servicekit import boolean as _bool
from servicekit import comma_list as _csv
from servicekit import http_url as _url
from servicekit import integer as _int
from servicekit import mode as _mode
from servicekit import optional_path as _optional_path
from servicekit import optional_text as _optional_text
from servicekit import path as _path
from servicekit import secret as _secret
from servicekit import text as _text

from ._errors import ConfigError
from ._ui_paths import UiOriginTemplate

__all__ = ["Settings"]

MIB: Final = 1024 * 1024
# wasmtime-py moves list<u8> one value per byte and caps the values one host call may allocate: bodies past
# ~3 MiB fail inside wasmtime whatever the conversion. A clear 413 below that beats a trap above it.
MAX_GUEST_BODY_BYTES: Final = contract.MAX_GUEST_BODY_BYTES  # 2 MiB; the gateway's default cap too

# Namespaces the runner owns: an unknown variable under one of these is a mistake worth stopping for.
_OWNED_PREFIXES: Final = ("RUNNER_", "EXT_CACHE_", "EXT_EGRESS_", "EXT_UI_", "EXT_STATIC_")
# Variables under those prefixes that belong to the gateway or the scripts, not to the runner.
_FOREIGN: Final = frozenset({"RUNNER_BASE_URL", "RUNNER_SECRETS_PUBLIC_KEY"})

# The reference runner reads one base URL and one token for its storage and platform calls alike; accepted as
# aliases so its deployments start unchanged (docs/migrating-from-the-reference.md). Its ui-proxy names
# (UI_PROXY_BASE_URL, UI_PROXY_AUTH_KEY, UI_PROXY_TIMEOUT_MS) are ours already.
_REFERENCE_PLATFORM_URL: Final = "STORAGE_API_BASE_URL"
_REFERENCE_PLATFORM_TOKEN: Final = "RUNNER_STORAGE_API_TOKEN"  # noqa: S105 (a variable name)

# The rows of _SETTINGS name the shared parsers by the short names they had when they lived in this module.
_bind: Final = host_port()


def _warmup_hashes(raw: str) -> tuple[str, ...]:
    try:
        return tuple(dict.fromkeys(parse_content_hash(item) for item in _csv(raw)))
    except ContentHashError as exc:
        raise ValueError(str(exc)) from None


def _default_var() -> Path:
    return Path(os.environ.get("RUNNER_VAR_DIR", "var"))


def _queue_discipline(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("fair", "fifo"):
        raise ValueError(f"must be fair or fifo, not {raw!r}")
    return value


def _tenant_weights(raw: str) -> tuple[tuple[str, int], ...]:
    """``tenant:weight,tenant:weight`` -> pairs (weights are integers from 1 to 1000)."""
    pairs: dict[str, int] = {}
    for item in _csv(raw):
        tenant, sep, weight = item.rpartition(":")
        tenant = tenant.strip()
        if not sep or not tenant or not weight.strip().isdigit() or not 1 <= int(weight) <= 1000:
            raise ValueError(f"expected tenant:weight with a weight from 1 to 1000, not {item!r}")
        pairs[tenant] = int(weight)
    return tuple(pairs.items())


# The shortest EXT_UI_SIGNING_KEY accepted (the gateway holds the same key, under the same rule).
MIN_KEY_LENGTH: Final = 16

_SETTINGS: Final[tuple[_Setting, ...]] = (
    _Setting("RUNNER_ENV", "env", _mode, DEVELOPMENT,
             "development or production: production refuses to start without the checklist of docs/security.md"),
    _Setting("RUNNER_BIND", "bind", _bind, "127.0.0.1:8080",
             "address the runner listens on; beyond loopback it needs RUNNER_SERVICE_TOKEN"),
    _Setting("RUNNER_WORKERS", "workers", _int(0, 256), 0,
             "worker processes behind the one port; 0 = one per CPU, 1 = a single process (docs/runner.md)"),
    _Setting("RUNNER_VAR_DIR", "var_dir", _path, None, "base directory of the embedded defaults (default ./var)"),
    _Setting("BUNDLE_STORE_BASE", "bundle_store_base", backend_url("file", "s3"), None,
             "file:///dir or s3://bucket/prefix (default file://<var>/bundles)"),
    _Setting("RUNNER_BUNDLE_KEY_TEMPLATE", "bundle_key_template", _text, "sha256/{hex}",
             "object key prefix of a bundle in the store"),
    _Setting("EXT_CACHE_ROOT", "cache_root", _path, None, "on-disk cache directory (default <var>/cache)"),
    _Setting("EXT_CACHE_MAX_BYTES", "cache_max_bytes", _int(1 * MIB), 4096 * MIB, "disk cache capacity"),
    _Setting("EXT_CACHE_MIN_FREE_BYTES", "cache_min_free_bytes", _int(0), 64 * MIB,
             "free space the cache filesystem keeps: below it /readyz fails; a full disk evicts back to it"),
    _Setting("RUNNER_COMPILED_CACHE_ENTRIES", "compiled_cache_entries", _int(1), 64,
             "compiled components kept in memory"),
    _Setting("RUNNER_PRECOMPILE_KEY", "precompile_key", _optional_text, None,
             "HMAC key; when set, precompiled artifacts are shared through the bundle store"),
    _Setting("SIGNING_TRUST_BUNDLE", "trust_bundle", _optional_path, None,
             "PEM file of trusted public keys; when set, only signed bundles run"),
    _Setting("RUNNER_SERVICE_TOKEN", "service_token", _optional_text, None,
             "token required on /v1/* when set (Authorization: Bearer, or x-runner-service-token)"),
    _Setting("RUNNER_PUBLIC_BASE", "public_base", _url, None, "public URL of the runner (ext-ui links)"),
    _Setting("RUNNER_DEFAULT_TIMEOUT_MS", "default_timeout_ms", _int(1), 10_000,
             "deadline of an invocation that asks for none"),
    _Setting("RUNNER_MAX_TIMEOUT_MS", "max_timeout_ms", _int(1), 60_000, "largest deadline an invocation gets"),
    _Setting("RUNNER_DEFAULT_MEMORY_MB", "default_memory_mb", _int(16), 128, "memory cap per linear memory"),
    _Setting("RUNNER_MAX_MEMORY_MB", "max_memory_mb", _int(16), 1024, "largest memory cap an invocation gets"),
    _Setting("RUNNER_MEMORY_BUDGET_MB", "memory_budget_mb", _int(16), 2048,
             "sum of the memory caps of invocations running at once; past it an invocation waits in the queue"),
    _Setting("RUNNER_OBSERVE_MEMORY", "observe_memory", _bool, False,
             "allocate guest memories in the runner, so a cap hit mid-call is memory_limit, not trap "
             "(costs instantiation time: docs/runner.md)"),
    _Setting("RUNNER_LOG_FORMAT", "log_format", log_format, "text",
             "text, or json: one JSON object per line (guest lines carry tenant, extension, request id)"),
    _Setting("RUNNER_MAX_REQUEST_BODY_BYTES", "max_request_body_bytes", _int(0, MAX_GUEST_BODY_BYTES), 2 * MIB,
             "largest request body passed to a guest (at most 2 MiB: see docs/runner.md)"),
    _Setting("RUNNER_MAX_RESPONSE_BODY_BYTES", "max_response_body_bytes", _int(0), 2 * MIB,
             "largest response body a guest may return"),
    _Setting("RUNNER_MAX_BUNDLE_BYTES", "max_bundle_bytes", _int(1), 256 * MIB, "largest bundle fetched"),
    _Setting("RUNNER_MAX_CONCURRENCY", "max_concurrency", _int(1), 8, "invocations running at once"),
    _Setting("RUNNER_MAX_CONCURRENCY_PER_TENANT", "max_concurrency_per_tenant", _int(1), 4,
             "invocations of one tenant running at once"),
    _Setting("RUNNER_MAX_CONCURRENCY_PER_EXTENSION", "max_concurrency_per_extension", _int(1), 4,
             "invocations of one extension running at once"),
    _Setting("RUNNER_MAX_QUEUE", "max_queue", _int(0), 64, "invocations waiting for a slot before 429"),
    _Setting("RUNNER_QUEUE_TIMEOUT_MS", "queue_timeout_ms", _int(0), 2_000,
             "how long an invocation waits for a slot before 429"),
    _Setting("RUNNER_ADMISSION_QUEUE", "admission_queue", _queue_discipline, "fair",
             "order of invocations waiting for a slot: fair (weighted fair queue between tenants) or fifo"),
    _Setting("RUNNER_TENANT_WEIGHTS", "tenant_weights", _tenant_weights, (),
             "tenant:weight,... shares of the fair queue (default weight 1): a tenant of weight 2 gets twice the "
             "slots of one of weight 1 while both wait"),
    _Setting("RUNNER_USAGE_METRICS_PER_TENANT", "usage_metrics_per_tenant", _bool, True,
             "label runner_usage_*_total with tenant and extension (off: one series per field, for fleets of "
             "many tenants; per-invocation usage still goes to the gateway)"),
    _Setting("RUNNER_IDEMPOTENCY_URL", "idempotency_url", backend_url("sqlite", *REDIS_SCHEMES, *POSTGRES_SCHEMES),
             None, "where keyed requests are claimed and their results shared: sqlite:///path "
             "(default <var>/idempotency.sqlite3), redis://host:port/db or postgresql://user@host:port/db"),
    _Setting("RUNNER_IDEMPOTENCY_TTL_S", "idempotency_ttl_s", _int(0), 86_400,
             "how long a keyed result is replayed (and an abandoned key refused)"),
    _Setting("RUNNER_IDEMPOTENCY_MAX_ENTRIES", "idempotency_max_entries", _int(0), 10_000,
             "keyed results also kept in this process's memory (for at most 5 minutes)"),
    _Setting("RUNNER_IDEMPOTENCY_CLAIM_MARGIN_S", "idempotency_claim_margin_s", _int(1), 60,
             "added to a keyed request's deadline: past it, a claim without a result is abandoned"),
    _Setting("RUNNER_DRAIN_TIMEOUT_S", "drain_timeout_s", _int(0), 30,
             "on SIGTERM, how long in-flight invocations may finish"),
    _Setting("RUNNER_SECRETS_PRIVATE_KEY", "secrets_private_key", _optional_text, None,
             "X25519 private key (base64) opening sealed secret envelopes"),
    _Setting("RUNNER_ALLOW_PLAINTEXT_SECRETS", "allow_plaintext_secrets", _bool, None,
             "open unencrypted inline/base64 secret envelopes (default: yes in development, no in production, "
             "where true is refused)"),
    _Setting("VAULT_ADDR", "vault_addr", _url, None, "Vault for vault-transit:v1 secret envelopes"),
    _Setting("VAULT_TOKEN", "vault_token", _optional_text, None, "Vault token (X-Vault-Token)"),
    _Setting("VAULT_NAMESPACE", "vault_namespace", _optional_text, None, "Vault namespace, if any"),
    _Setting("EXT_EGRESS_ALLOWLIST", "egress_allowlist", _csv, (),
             "hosts guests may fetch: host, *.domain, optional :port; empty denies all"),
    _Setting("RUNNER_STORAGE_URL", "storage_url", backend_url("sqlite", "http", "https", *POSTGRES_SCHEMES), None,
             "sqlite:///path (default <var>/storage.sqlite3), postgresql://user@host:port/db or the "
             "platform's http(s) storage API",
             aliases=(_REFERENCE_PLATFORM_URL,)),
    _Setting("RUNNER_STORAGE_AUTH_KEY", "storage_auth_key", _optional_text, None,
             "x-runner-auth for the HTTP storage API", aliases=(_REFERENCE_PLATFORM_TOKEN,)),
    _Setting("UI_PROXY_BASE_URL", "ui_proxy_base_url", _url, None, "base URL of ui-proxy routes"),
    _Setting("UI_PROXY_AUTH_KEY", "ui_proxy_auth_key", _optional_text, None, "bearer token for ui-proxy"),
    _Setting("UI_PROXY_TIMEOUT_MS", "ui_proxy_timeout_ms", _int(1), 5_000, "ui-proxy call timeout"),
    _Setting("RUNNER_PLATFORM_API_URL", "platform_api_url", _url, None,
             "platform internal API for scheduler, invoicing, clients, services",
             aliases=(_REFERENCE_PLATFORM_URL,)),
    _Setting("RUNNER_PLATFORM_AUTH_KEY", "platform_auth_key", _optional_text, None,
             "x-runner-auth for the platform API", aliases=(_REFERENCE_PLATFORM_TOKEN,)),
    _Setting("RUNNER_DEBUG_REDIS_URL", "debug_redis_url", backend_url(*REDIS_SCHEMES), None,
             "Redis for debug events"),
    _Setting("RUNNER_DEBUG_REDIS_STREAM_PREFIX", "debug_stream_prefix", _text, "ext-debug:",
             "debug stream key prefix"),
    _Setting("RUNNER_DEBUG_REDIS_MAXLEN", "debug_maxlen", _int(1), 2000, "approximate stream length"),
    _Setting("RUNNER_DEBUG_MAX_EVENT_BYTES", "debug_max_event_bytes", _int(64), 8192,
             "longest debug event message"),
    _Setting("EXT_UI_FRAME_ANCESTORS", "ui_frame_ancestors", _optional_text, None,
             "frame-ancestors appended to the ext-ui CSP"),
    _Setting("EXT_UI_CONTENT_SECURITY_POLICY", "ui_content_security_policy", _optional_text, None,
             "replaces the default ext-ui CSP"),
    _Setting("EXT_UI_SIGNING_KEY", "ui_signing_key", _secret(MIN_KEY_LENGTH), None,
             "HMAC key of signed /ext-ui URLs, the gateway's too (at least 16 characters); when set, /ext-ui/{ext}/"
             "{hash}/ serves only URLs the gateway signed (docs/ui.md)"),
    _Setting("EXT_UI_ORIGIN_TEMPLATE", "ui_origin_template", UiOriginTemplate.parse, None,
             "one origin per install for UIs, e.g. https://{extension}--{tenant}.ext-ui.example (docs/ui.md)"),
    _Setting("EXT_STATIC_STRICT_VALIDATION", "ui_strict_validation", _bool, True,
             "without EXT_UI_SIGNING_KEY, /ext-ui serves nothing (off: anything, development only); isolated "
             "origins ask the gateway which hash an install serves"),
    _Setting("REGISTRY_BASE_URL", "registry_base_url", _url, None, "gateway URL for install validation"),
    _Setting("RUNNER_WARMUP_HASHES", "warmup_hashes", _warmup_hashes, (),
             "content hashes (sha256:<hex>, comma-separated) fetched and compiled at start; /readyz waits for them"),
    _Setting("RUNNER_WARMUP_TIMEOUT_S", "warmup_timeout_s", _int(1, 3600), 300,
             "longest /readyz waits for the warm-up before answering ready anyway"),
    _Setting("RUNNER_JOURNAL_KEYS", "journal_keys", _optional_text, None,
             "invocation journal keys, kid:<base64 32 bytes>[,kid:...] (first encrypts, all decrypt; the gateway "
             "holds the same); unset: no journal (a request's journal policy is ignored, logged once)"),
    _Setting("RUNNER_JOURNAL_STORE", "journal_store", backend_url("file", "s3"), None,
             "where journal entries are written (default: the bundle store)"),
    _Setting("RUNNER_JOURNAL_PREFIX", "journal_prefix", _text, "journal",
             "object key prefix of journal entries: <prefix>/v1/<tenant>/<extension>/<entry>.jrnl"),
    _Setting("RUNNER_JOURNAL_MAX_QUEUE", "journal_max_queue", _int(1, 100_000), 256,
             "journal entries waiting to be written; past it entries are dropped (counted), never waited for"),
    _Setting("RUNNER_GUEST_THREADS", "guest_threads", _int(0, 1024), 0,
             "guests a worker process starts at once; each further one (up to RUNNER_MAX_CONCURRENCY) starts when "
             "a running guest has run RUNNER_GUEST_STALL_MS; 0 = all of RUNNER_MAX_CONCURRENCY at once "
             "(the measured default: docs/runner.md)"),
    _Setting("RUNNER_GUEST_STALL_MS", "guest_stall_ms", _int(0, 60_000), 2,
             "how long a guest runs before it lets one more guest of its worker process start"),
)

_TABLE: Final = SettingsTable(
    _SETTINGS, owned_prefixes=_OWNED_PREFIXES, foreign=_FOREIGN, unknown_hint="see docs/configuration.md"
)


@dataclass(frozen=True)
class Settings:
    """The runner's configuration. Build it with :meth:`from_env`, or directly in tests."""

    TABLE: ClassVar[SettingsTable] = _TABLE
    """Every variable :meth:`from_env` reads, with its parser, default and doc."""

    env: Mode = DEVELOPMENT
    bind: str = "127.0.0.1:8080"
    workers: int = 0
    var_dir: Path = field(default_factory=_default_var)
    bundle_store_base: str | None = None
    bundle_key_template: str = "sha256/{hex}"
    cache_root: Path | None = None
    cache_max_bytes: int = 4096 * MIB
    cache_min_free_bytes: int = 64 * MIB
    compiled_cache_entries: int = 64
    precompile_key: str | None = None
    trust_bundle: Path | None = None
    service_token: str | None = None
    public_base: str | None = None
    default_timeout_ms: int = 10_000
    max_timeout_ms: int = 60_000
    default_memory_mb: int = 128
    max_memory_mb: int = 1024
    memory_budget_mb: int = 2048
    observe_memory: bool = False
    log_format: str = "text"
    max_request_body_bytes: int = 2 * MIB
    max_response_body_bytes: int = 2 * MIB
    max_bundle_bytes: int = 256 * MIB
    max_concurrency: int = 8
    max_concurrency_per_tenant: int = 4
    max_concurrency_per_extension: int = 4
    max_queue: int = 64
    queue_timeout_ms: int = 2_000
    admission_queue: str = "fair"
    tenant_weights: tuple[tuple[str, int], ...] = ()
    usage_metrics_per_tenant: bool = True
    idempotency_url: str | None = None
    idempotency_ttl_s: int = 86_400
    idempotency_max_entries: int = 10_000
    idempotency_claim_margin_s: int = 60
    drain_timeout_s: int = 30
    secrets_private_key: str | None = None
    allow_plaintext_secrets: bool | None = None
    vault_addr: str | None = None
    vault_token: str | None = None
    vault_namespace: str | None = None
    egress_allowlist: tuple[str, ...] = ()
    storage_url: str | None = None
    storage_auth_key: str | None = None
    ui_proxy_base_url: str | None = None
    ui_proxy_auth_key: str | None = None
    ui_proxy_timeout_ms: int = 5_000
    platform_api_url: str | None = None
    platform_auth_key: str | None = None
    debug_redis_url: str | None = None
    debug_stream_prefix: str = "ext-debug:"
    debug_maxlen: int = 2000
    debug_max_event_bytes: int = 8192
    ui_frame_ancestors: str | None = None
    ui_content_security_policy: str | None = None
    ui_signing_key: str | None = field(default=None, repr=False)
    ui_origin_template: UiOriginTemplate | None = None
    ui_strict_validation: bool = True
    registry_base_url: str | None = None
    warmup_hashes: tuple[str, ...] = ()
    warmup_timeout_s: int = 300
    journal_keys: str | None = field(default=None, repr=False)
    journal_store: str | None = None
    journal_prefix: str = "journal"
    journal_max_queue: int = 256
    guest_threads: int = 0
    guest_stall_ms: int = 2
    # Everything the bundle store reads (STORAGE_S3_*), passed through untouched.
    store_env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.default_timeout_ms > self.max_timeout_ms:
            raise ConfigError("RUNNER_DEFAULT_TIMEOUT_MS", "must not exceed RUNNER_MAX_TIMEOUT_MS")
        if self.default_memory_mb > self.max_memory_mb:
            raise ConfigError("RUNNER_DEFAULT_MEMORY_MB", "must not exceed RUNNER_MAX_MEMORY_MB")
        if self.memory_budget_mb < self.max_memory_mb:
            raise ConfigError("RUNNER_MEMORY_BUDGET_MB", "must be at least RUNNER_MAX_MEMORY_MB")
        try:
            enforce_mode(
                self.env,
                mode_setting="RUNNER_ENV",
                bind=self.bind,
                bind_setting="RUNNER_BIND",
                token_setting="RUNNER_SERVICE_TOKEN",  # noqa: S106 (a variable name)
                has_token=self.service_token is not None,
                production=self._production_requirements(),
            )
        except InvalidSetting as exc:
            raise ConfigError(exc.setting, exc.message) from None

    def _production_requirements(self) -> tuple[Requirement, ...]:
        """What RUNNER_ENV=production insists on (docs/security.md's checklist), in the order it is checked."""
        return (
            Requirement("RUNNER_SERVICE_TOKEN", self.service_token is not None,
                        "must be set: without it anyone who reaches the runner runs any bundle"),
            Requirement("SIGNING_TRUST_BUNDLE", self.trust_bundle is not None,
                        "must be set: without it unsigned bundles run"),
            Requirement("RUNNER_ALLOW_PLAINTEXT_SECRETS", self.allow_plaintext_secrets is not True,
                        "must not be true: inline/base64 envelopes carry secrets unencrypted"),
            Requirement("EXT_UI_SIGNING_KEY", self.ui_signing_key is not None,
                        "must be set: /ext-ui serves only URLs the gateway signed with it"),
        )

    @property
    def plaintext_secrets_allowed(self) -> bool:
        """Whether inline/base64 secret envelopes open: ``RUNNER_ALLOW_PLAINTEXT_SECRETS``, else not in production."""
        if self.allow_plaintext_secrets is not None:
            return self.allow_plaintext_secrets
        return self.env != PRODUCTION

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default ``os.environ``).

        Raises:
            ConfigError: naming the first unknown or invalid variable.
        """
        env = dict(os.environ if environ is None else environ)
        try:
            values = _TABLE.read(env)
        except InvalidSetting as exc:
            raise ConfigError(exc.setting, exc.message) from None
        values["store_env"] = {k: v for k, v in env.items() if k.startswith("STORAGE_S3_")}
        return cls(**values)

    # Resolved locations of the embedded defaults.
    @property
    def resolved_store_base(self) -> str:
        if self.bundle_store_base:
            return self.bundle_store_base
        return (self.var_dir / "bundles").resolve().as_uri()

    @property
    def resolved_idempotency_path(self) -> Path:
        return self.var_dir / "idempotency.sqlite3"

    @property
    def resolved_cache_root(self) -> Path:
        return self.cache_root if self.cache_root is not None else self.var_dir / "cache"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def settings_table() -> list[tuple[str, str, str]]:
    """(variable, default, doc) for every setting: the source of docs/configuration.md."""
    return _TABLE.rows()
