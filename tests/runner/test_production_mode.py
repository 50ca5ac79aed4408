"""``RUNNER_ENV=production`` fails closed: each missing piece of the checklist stops start-up, naming its variable;
in every mode a non-loopback bind needs the service token (docs/security.md)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import trio

from runner_trio import ConfigError, Settings, create_app
from runner_trio.capabilities import SecretEnvelopeError
from runner_trio.capabilities.secrets import SecretResolver
from runner_trio.engine import HostScope

KEY = "ui-signing-key-0123456789"


def production(tmp_path: Path) -> dict[str, str]:
    """A production environment that meets the whole checklist."""
    trust = tmp_path / "trust.pem"
    trust.write_text("")
    return {
        "RUNNER_ENV": "production",
        "RUNNER_SERVICE_TOKEN": "service-token-0123456789",
        "SIGNING_TRUST_BUNDLE": str(trust),
        "EXT_UI_SIGNING_KEY": KEY,
        "RUNNER_VAR_DIR": str(tmp_path / "var"),
    }


def test_a_complete_production_environment_starts(tmp_path: Path) -> None:
    settings = Settings.from_env(production(tmp_path))
    assert settings.env == "production"
    assert settings.plaintext_secrets_allowed is False
    assert KEY not in repr(settings)
    create_app(settings)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"RUNNER_SERVICE_TOKEN": None}, "RUNNER_SERVICE_TOKEN"),
        ({"SIGNING_TRUST_BUNDLE": None}, "SIGNING_TRUST_BUNDLE"),
        ({"RUNNER_ALLOW_PLAINTEXT_SECRETS": "true"}, "RUNNER_ALLOW_PLAINTEXT_SECRETS"),
        ({"EXT_UI_SIGNING_KEY": None}, "EXT_UI_SIGNING_KEY"),
        ({"RUNNER_SERVICE_TOKEN": None, "RUNNER_BIND": "0.0.0.0:8080"}, "RUNNER_SERVICE_TOKEN"),
    ],
)
def test_production_refuses_each_missing_piece(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, str | None], named: str
) -> None:
    env = production(tmp_path)
    for name, value in change.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert info.value.setting == named
    assert str(info.value).startswith(f"{named}: ")
    # create_app() with no settings reads the same environment and stops the same way.
    for name in [*production(tmp_path), "RUNNER_BIND", "RUNNER_ALLOW_PLAINTEXT_SECRETS"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as started:
        create_app()
    assert started.value.setting == named


def test_production_holds_for_settings_built_in_code(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Settings(env="production", var_dir=tmp_path, service_token="t" * 20, ui_signing_key=KEY)
    assert info.value.setting == "SIGNING_TRUST_BUNDLE"


@pytest.mark.parametrize("env", ["development", "production"])
def test_a_non_loopback_bind_needs_the_service_token(tmp_path: Path, env: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"RUNNER_ENV": env, "RUNNER_BIND": "0.0.0.0:8080", "RUNNER_VAR_DIR": str(tmp_path)})
    assert info.value.setting == "RUNNER_SERVICE_TOKEN"
    assert "RUNNER_BIND=0.0.0.0:8080" in str(info.value)
    with pytest.raises(ConfigError):
        Settings(bind="[::]:8080")
    # Loopback needs nothing in development: scripts/run stays one command.
    assert Settings.from_env({"RUNNER_BIND": "127.0.0.1:8080"}).service_token is None
    assert Settings.from_env({"RUNNER_BIND": "0.0.0.0:8080", "RUNNER_SERVICE_TOKEN": "tok"}).bind == "0.0.0.0:8080"


def test_plaintext_envelopes_follow_the_mode() -> None:
    assert Settings().plaintext_secrets_allowed is True
    assert Settings(allow_plaintext_secrets=False).plaintext_secrets_allowed is False
    assert Settings.from_env({"RUNNER_ALLOW_PLAINTEXT_SECRETS": "no"}).plaintext_secrets_allowed is False


async def test_a_refused_plaintext_envelope_does_not_open() -> None:
    scope = HostScope("acme", "ext", install_id="i", deadline=trio.current_time() + 30)
    envelope = {"ciphertext_b64": base64.b64encode(json.dumps({"api_key": "sk-TOPSECRET"}).encode()).decode()}
    resolver = SecretResolver(None, allow_plaintext=False)
    for shape in (envelope, {**envelope, "algorithm": "inline/base64"}):
        with pytest.raises(SecretEnvelopeError) as info:
            await resolver.resolve(scope, shape)
        assert info.value.code == "plaintext_refused"
        assert "TOPSECRET" not in str(info.value)
    # An empty envelope still means "no secrets", and plaintext opens where it is allowed.
    assert await (await resolver.resolve(scope, {"ciphertext_b64": ""})).list_keys() == []
    opened = await SecretResolver(None, allow_plaintext=True).resolve(scope, envelope)
    assert await opened.get("api_key") == "sk-TOPSECRET"
