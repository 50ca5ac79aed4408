"""The gateway's settings as a table: the same refusals as the runner's, blanks unset, os.environ by default."""

from __future__ import annotations

import pytest

from gateway_quart import ENV_VARS, Settings, SettingsError

BASE = {"RUNNER_BASE_URL": "http://127.0.0.1:8001"}


def test_the_table_is_what_is_read() -> None:
    assert Settings.TABLE.names == ENV_VARS
    assert "GATEWAY_DRAIN_TIMEOUT_S" in ENV_VARS
    assert Settings.TABLE.owned_prefixes == ("GATEWAY_", "EXT_GATEWAY_")


def test_messages_name_the_variable_and_say_what_is_wrong() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**BASE, "GATEWAY_BIDN": "x"})
    assert info.value.message == f"GATEWAY_BIDN: unknown setting (known: {', '.join(sorted(ENV_VARS))})"
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"RUNNER_BASE_URL": "  "})
    assert info.value.message == "RUNNER_BASE_URL: is required (the runner's internal URL, comma-separated for many)"
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"RUNNER_BASE_URL": " , "})
    assert info.value.message == "RUNNER_BASE_URL: at least one runner URL is required"
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**BASE, "GATEWAY_RUNNER_ATTEMPTS": "11"})
    assert info.value.message == "GATEWAY_RUNNER_ATTEMPTS: must be between 1 and 10, got 11"


def test_blank_values_count_as_unset() -> None:
    settings = Settings.from_env({**BASE, "GATEWAY_BIND": " ", "REGISTRY_DATABASE": "", "GATEWAY_ADMIN_TOKEN": " "})
    assert settings == Settings.from_env(BASE)


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_BASE_URL", "http://runner.internal:8080/")
    monkeypatch.setenv("GATEWAY_DRAIN_TIMEOUT_S", "3")
    settings = Settings.from_env()
    assert settings.runner_base_urls == ("http://runner.internal:8080",)
    assert settings.drain_timeout_s == 3
