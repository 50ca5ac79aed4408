"""Settings from the environment: defaults, parsing, and refusal of unknown or invalid variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner_trio._config import Settings, settings_table
from runner_trio._errors import ConfigError


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.bind == "127.0.0.1:8080"
    assert settings.default_timeout_ms == 10_000
    assert settings.default_memory_mb == 128
    assert settings.egress_allowlist == ()
    assert settings.resolved_store_base.startswith("file:///")
    assert settings.resolved_store_base.endswith("/var/bundles")


def test_values_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "RUNNER_BIND": "0.0.0.0:9000",
            "RUNNER_SERVICE_TOKEN": "svc-token",
            "EXT_CACHE_ROOT": "/tmp/c",
            "EXT_EGRESS_ALLOWLIST": "api.example.com, *.example.org:8443",
            "EXT_STATIC_STRICT_VALIDATION": "false",
            "STORAGE_S3_REGION": "eu-west-1",
            "RUNNER_BASE_URL": "http://gateway-owned-variable",
            "HOME": "/root",
        }
    )
    assert settings.bind == "0.0.0.0:9000"
    assert settings.resolved_cache_root == Path("/tmp/c")
    assert settings.egress_allowlist == ("api.example.com", "*.example.org:8443")
    assert settings.ui_strict_validation is False
    assert settings.store_env == {"STORAGE_S3_REGION": "eu-west-1"}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"RUNNER_TIMEOUT_MS": "5"}, "RUNNER_TIMEOUT_MS"),
        ({"EXT_CACHE_MAX_BYTE": "5"}, "EXT_CACHE_MAX_BYTE"),
        ({"RUNNER_BIND": "localhost"}, "RUNNER_BIND"),
        ({"RUNNER_MAX_CONCURRENCY": "zero"}, "RUNNER_MAX_CONCURRENCY"),
        ({"RUNNER_MAX_CONCURRENCY": "0"}, "RUNNER_MAX_CONCURRENCY"),
        ({"EXT_STATIC_STRICT_VALIDATION": "maybe"}, "EXT_STATIC_STRICT_VALIDATION"),
        ({"RUNNER_DEFAULT_TIMEOUT_MS": "90000"}, "RUNNER_DEFAULT_TIMEOUT_MS"),
        ({"UI_PROXY_BASE_URL": "ftp://x"}, "UI_PROXY_BASE_URL"),
        # A backend URL with a scheme that has no backend stops start-up instead of becoming a file name.
        ({"RUNNER_STORAGE_URL": "mysql://db/storage"}, "RUNNER_STORAGE_URL"),
        ({"RUNNER_STORAGE_URL": "/var/storage.sqlite3"}, "RUNNER_STORAGE_URL"),
        ({"RUNNER_IDEMPOTENCY_URL": "memcached://cache:11211"}, "RUNNER_IDEMPOTENCY_URL"),
        ({"BUNDLE_STORE_BASE": "gs://bucket/prefix"}, "BUNDLE_STORE_BASE"),
        ({"RUNNER_DEBUG_REDIS_URL": "valkey://cache:6379"}, "RUNNER_DEBUG_REDIS_URL"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert info.value.setting == named
    assert named in str(info.value)


def test_every_setting_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    missing = [name for name, _default, _doc in settings_table() if f"`{name}`" not in doc]
    assert missing == []


def test_reference_variable_names_are_aliases() -> None:
    settings = Settings.from_env(
        {"STORAGE_API_BASE_URL": "http://platform:3000", "RUNNER_STORAGE_API_TOKEN": "tok-1"}
    )
    # The reference reads one base URL and one token for storage and the platform API alike.
    assert (settings.storage_url, settings.platform_api_url) == ("http://platform:3000", "http://platform:3000")
    assert (settings.storage_auth_key, settings.platform_auth_key) == ("tok-1", "tok-1")
    assert "STORAGE_API_BASE_URL" in Settings.TABLE.names
    # Ours and the alias may both be set when they agree; ours alone is unaffected.
    both = Settings.from_env({"RUNNER_PLATFORM_API_URL": "http://platform:3000",
                              "STORAGE_API_BASE_URL": "http://platform:3000"})
    assert both.platform_api_url == "http://platform:3000"
    assert both.storage_url == "http://platform:3000"
    ours = Settings.from_env({"RUNNER_STORAGE_URL": "sqlite:///tmp/s.db"})
    assert (ours.storage_url, ours.platform_api_url) == ("sqlite:///tmp/s.db", None)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"RUNNER_STORAGE_URL": "sqlite:///tmp/s.db", "STORAGE_API_BASE_URL": "http://platform"},
         ("RUNNER_STORAGE_URL", "STORAGE_API_BASE_URL")),
        ({"RUNNER_PLATFORM_AUTH_KEY": "a", "RUNNER_STORAGE_API_TOKEN": "b"},
         ("RUNNER_PLATFORM_AUTH_KEY", "RUNNER_STORAGE_API_TOKEN")),
    ],
)
def test_an_alias_disagreeing_with_ours_stops_start_up(env: dict[str, str], named: tuple[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert info.value.setting == named[0]
    assert all(name in str(info.value) for name in named)


def test_an_invalid_alias_value_names_the_alias() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"STORAGE_API_BASE_URL": "ftp://platform"})
    assert info.value.setting == "STORAGE_API_BASE_URL"


def test_backend_urls_take_every_scheme_that_has_a_backend() -> None:
    settings = Settings.from_env({
        "RUNNER_STORAGE_URL": "postgresql://runner@db:5432/ext",
        "RUNNER_IDEMPOTENCY_URL": "postgres://runner@db/ext",
        "BUNDLE_STORE_BASE": "s3://bundles/prod",
        "RUNNER_DEBUG_REDIS_URL": "rediss://cache:6380/0",
    })
    assert settings.storage_url == "postgresql://runner@db:5432/ext"
    assert settings.idempotency_url == "postgres://runner@db/ext"
    assert settings.bundle_store_base == "s3://bundles/prod"
    assert settings.debug_redis_url == "rediss://cache:6380/0"
