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
