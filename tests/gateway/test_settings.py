"""Settings from the environment: defaults, and refusals that name the setting."""

from __future__ import annotations

import pytest

import sealing
from gateway_quart import ENV_VARS, Settings, SettingsError, load_settings

BASE = {"RUNNER_BASE_URL": "http://127.0.0.1:8001"}


def test_defaults() -> None:
    settings = load_settings(BASE)
    assert settings == Settings(runner_base_urls=("http://127.0.0.1:8001",))
    assert settings.bind == "127.0.0.1:8000"
    assert settings.timeout_ms == 30_000
    assert settings.max_body_bytes == 2 * 1024 * 1024  # the runner's cap
    assert settings.registry_database == "./var/registry.sqlite3"
    assert settings.public_runner_base == "http://127.0.0.1:8001"


def test_everything_parsed() -> None:
    _, public = sealing.generate_keypair()
    settings = load_settings({
        "RUNNER_BASE_URL": "http://r1:8001/, http://r2:8001",
        "GATEWAY_BIND": "0.0.0.0:9000",
        "RUNNER_SERVICE_TOKEN": "svc",
        "EXT_GATEWAY_TIMEOUT_MS": "1500",
        "EXT_GATEWAY_ALLOWED_ORIGINS": "https://App.example.com, http://localhost:3000",
        "REGISTRY_DATABASE": "/tmp/reg.db",
        "RUNNER_PUBLIC_BASE": "https://runner.example.com/",
        "RUNNER_SECRETS_PUBLIC_KEY": public,
        "DEV_TENANT_ID": "dev",
        "BUNDLE_STORE_BASE": "file:///tmp/store",
        "GATEWAY_ADMIN_TOKEN": "a" * 32,
        "GATEWAY_RATE_LIMIT_RPS": "2.5",
        "GATEWAY_RATE_LIMIT_BURST": "5",
        "GATEWAY_RUNNER_ATTEMPTS": "2",
        "GATEWAY_SESSION_COOKIE_SECURE": "true",
        "UNRELATED": "ignored",
    })
    assert settings.runner_base_urls == ("http://r1:8001", "http://r2:8001")
    assert settings.allowed_origins == ("https://app.example.com", "http://localhost:3000")
    assert settings.public_runner_base == "https://runner.example.com"
    assert (settings.timeout_ms, settings.rate_limit_rps, settings.rate_limit_burst) == (1500, 2.5, 5)
    assert settings.session_cookie_secure is True
    assert "a" * 32 not in repr(settings)


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({}, "RUNNER_BASE_URL"),
        ({"RUNNER_BASE_URL": "ftp://x"}, "RUNNER_BASE_URL"),
        ({**BASE, "GATEWAY_BIDN": "x"}, "GATEWAY_BIDN"),
        ({**BASE, "EXT_GATEWAY_TIMEOUT": "5"}, "EXT_GATEWAY_TIMEOUT"),
        ({**BASE, "EXT_GATEWAY_TIMEOUT_MS": "soon"}, "EXT_GATEWAY_TIMEOUT_MS"),
        ({**BASE, "EXT_GATEWAY_TIMEOUT_MS": "0"}, "EXT_GATEWAY_TIMEOUT_MS"),
        ({**BASE, "GATEWAY_BIND": "localhost"}, "GATEWAY_BIND"),
        ({**BASE, "RUNNER_SECRETS_PUBLIC_KEY": "c2hvcnQ="}, "RUNNER_SECRETS_PUBLIC_KEY"),
        ({**BASE, "GATEWAY_ADMIN_TOKEN": "short"}, "GATEWAY_ADMIN_TOKEN"),
        ({**BASE, "EXT_GATEWAY_ALLOWED_ORIGINS": "https://a.example/path"}, "EXT_GATEWAY_ALLOWED_ORIGINS"),
        ({**BASE, "BUNDLE_STORE_BASE": "/tmp/store"}, "BUNDLE_STORE_BASE"),
        ({**BASE, "GATEWAY_RATE_LIMIT_RPS": "-1"}, "GATEWAY_RATE_LIMIT_RPS"),
        ({**BASE, "GATEWAY_SESSION_COOKIE_SECURE": "maybe"}, "GATEWAY_SESSION_COOKIE_SECURE"),
        ({**BASE, "DEV_TENANT_ID": "bad tenant"}, "DEV_TENANT_ID"),
    ],
)
def test_invalid_settings_name_themselves(env: dict[str, str], setting: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert info.value.setting == setting
    assert setting in str(info.value)


def test_known_names_are_listed() -> None:
    assert "GATEWAY_ADMIN_TOKEN" in ENV_VARS
    assert "EXT_GATEWAY_TIMEOUT_MS" in ENV_VARS


@pytest.mark.parametrize(
    ("name", "value"),
    [
        # Accepted before: a directory named "postgresql:" with a private SQLite file in it.
        ("REGISTRY_DATABASE", "mysql://db/registry"),
        ("REGISTRY_DATABASE", "postgresql:registry"),
        ("GATEWAY_REDIS_URL", "memcached://cache:11211"),
        ("DEBUG_STREAM_REDIS_URL", "http://cache:6379"),
        ("BUNDLE_STORE_BASE", "gs://bundles/prod"),
    ],
)
def test_a_backend_setting_refuses_a_scheme_without_a_backend(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({**BASE, name: value})
    assert info.value.setting == name


def test_backend_settings_take_postgresql_and_redis() -> None:
    settings = load_settings({
        **BASE,
        "REGISTRY_DATABASE": "postgresql://gateway@db:5432/registry",
        "GATEWAY_REDIS_URL": "redis://cache:6379/1",
    })
    assert settings.registry_database == "postgresql://gateway@db:5432/registry"
    assert settings.redis_url == "redis://cache:6379/1"
    assert load_settings({**BASE, "REGISTRY_DATABASE": "sqlite:///var/r.sqlite3"}).registry_database == (
        "sqlite:///var/r.sqlite3")
