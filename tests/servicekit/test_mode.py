"""The deployment mode: a non-loopback bind needs a token in every mode; production refuses unmet requirements."""

from __future__ import annotations

import pytest

from servicekit import (
    DEVELOPMENT,
    PRODUCTION,
    InvalidSetting,
    Requirement,
    enforce_mode,
    is_loopback_bind,
    mode,
    secret,
)


@pytest.mark.parametrize(
    ("bind", "loopback"),
    [
        ("127.0.0.1:8080", True),
        ("127.0.0.2:80", True),
        ("localhost:8000", True),
        ("[::1]:8000", True),
        ("unix:/run/gateway.sock", True),
        ("0.0.0.0:8080", False),
        ("[::]:8080", False),
        ("10.0.0.5:8080", False),
        ("runner.internal:8080", False),
    ],
)
def test_loopback_binds(bind: str, loopback: bool) -> None:
    assert is_loopback_bind(bind) is loopback


def test_mode_parser() -> None:
    assert mode(" Production ") == PRODUCTION
    assert mode("development") == DEVELOPMENT
    with pytest.raises(ValueError, match="development or production"):
        mode("prod")


def _enforce(current: str = DEVELOPMENT, *, bind: str = "127.0.0.1:1", has_token: bool = False,
             production: tuple[Requirement, ...] = ()) -> None:
    enforce_mode(mode(current), mode_setting="APP_ENV", bind=bind, bind_setting="APP_BIND",
                 token_setting="APP_TOKEN", has_token=has_token, production=production)


def test_a_non_loopback_bind_needs_the_token_in_every_mode() -> None:
    for current in (DEVELOPMENT, PRODUCTION):
        with pytest.raises(InvalidSetting) as info:
            _enforce(current, bind="0.0.0.0:8080")
        assert info.value.setting == "APP_TOKEN"
        assert "APP_BIND=0.0.0.0:8080" in info.value.message
    _enforce(bind="0.0.0.0:8080", has_token=True)
    _enforce(bind="127.0.0.1:8080")


def test_production_refuses_the_first_unmet_requirement() -> None:
    requirements = (Requirement("APP_A", True, "fine"), Requirement("APP_B", False, "must be set: b"),
                    Requirement("APP_C", False, "must be set: c"))
    _enforce(DEVELOPMENT, production=requirements)  # development does not ask
    with pytest.raises(InvalidSetting) as info:
        _enforce(PRODUCTION, has_token=True, production=requirements)
    assert info.value.setting == "APP_B"
    assert str(info.value) == "APP_B: must be set: b (APP_ENV=production)"


def test_secret_parser() -> None:
    parse = secret(16)
    assert parse("  ") is None
    assert parse("k" * 16) == "k" * 16
    with pytest.raises(ValueError, match="at least 16"):
        parse("short")
