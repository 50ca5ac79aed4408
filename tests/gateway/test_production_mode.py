"""``GATEWAY_ENV=production`` fails closed: each missing piece stops start-up naming its variable; in every mode a
non-loopback bind needs ``RUNNER_SERVICE_TOKEN`` (docs/security.md)."""

from __future__ import annotations

import pytest

from gateway_quart import Settings, SettingsError, create_app, load_settings

PRODUCTION = {
    "GATEWAY_ENV": "production",
    "RUNNER_BASE_URL": "http://10.0.0.7:8080",
    "GATEWAY_BIND": "0.0.0.0:8000",
    "RUNNER_SERVICE_TOKEN": "service-token-0123456789",
    "EXT_UI_SIGNING_KEY": "ui-signing-key-0123456789",
    "GATEWAY_SESSION_SECRET": "session-secret-0123456789",
    "GATEWAY_SESSION_COOKIE_SECURE": "true",
}


def test_a_complete_production_environment_starts() -> None:
    settings = load_settings(PRODUCTION)
    assert settings.env == "production"
    assert "ui-signing-key" not in repr(settings)
    create_app(settings)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"RUNNER_SERVICE_TOKEN": None}, "RUNNER_SERVICE_TOKEN"),
        ({"RUNNER_SERVICE_TOKEN": None, "GATEWAY_BIND": "127.0.0.1:8000"}, "RUNNER_SERVICE_TOKEN"),
        ({"EXT_UI_SIGNING_KEY": None}, "EXT_UI_SIGNING_KEY"),
        ({"GATEWAY_SESSION_SECRET": None}, "GATEWAY_SESSION_SECRET"),
        ({"GATEWAY_SESSION_COOKIE_SECURE": "false"}, "GATEWAY_SESSION_COOKIE_SECURE"),
        ({"DEV_TENANT_ID": "dev"}, "DEV_TENANT_ID"),
    ],
)
def test_production_refuses_each_missing_piece(
    monkeypatch: pytest.MonkeyPatch, change: dict[str, str | None], named: str
) -> None:
    env = dict(PRODUCTION)
    for name, value in change.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert info.value.setting == named
    assert "GATEWAY_ENV=production" in str(info.value) or "GATEWAY_BIND" in str(info.value)
    # Start-up (python -m gateway_quart) reads os.environ the same way and stops the same way.
    for name in (*PRODUCTION, "DEV_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as started:
        Settings.from_env()
    assert started.value.setting == named


@pytest.mark.parametrize("mode", ["development", "production"])
def test_a_non_loopback_bind_needs_the_runner_token(mode: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"GATEWAY_ENV": mode, "RUNNER_BASE_URL": "http://r:8080", "GATEWAY_BIND": "0.0.0.0:8000"})
    assert info.value.setting == "RUNNER_SERVICE_TOKEN"
    assert "GATEWAY_BIND=0.0.0.0:8000" in str(info.value)
    # Loopback and unix sockets need nothing in development: scripts/run stays one command.
    for bind in ("127.0.0.1:8000", "unix:/tmp/gw.sock"):
        assert load_settings({"RUNNER_BASE_URL": "http://r:8080", "GATEWAY_BIND": bind}).env == "development"
    with pytest.raises(SettingsError):
        Settings(runner_base_urls=("http://r:8080",), bind="10.1.2.3:8000")
