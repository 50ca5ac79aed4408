"""Settings tables: parsing, refusal of unknown and invalid variables, required rows, blanks, Markdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

import servicekit
from servicekit import (
    REQUIRED,
    InvalidSetting,
    Setting,
    SettingsTable,
    boolean,
    comma_list,
    host_port,
    http_url,
    integer,
    optional_path,
    optional_text,
    path,
    text,
)

TABLE = SettingsTable(
    [
        Setting("APP_URL", "url", http_url, REQUIRED, "where the app is"),
        Setting("APP_BIND", "bind", host_port(), "127.0.0.1:1", "address to listen on"),
        Setting("APP_WORKERS", "workers", integer(1, 8), 2, "workers | threads"),
        Setting("APP_DEBUG", "debug", boolean, False, "debug mode"),
        Setting("APP_ROOT", "root", optional_path, None, "data directory (default ./data)"),
        Setting("APP_TAGS", "tags", comma_list, (), "tags"),
    ],
    owned_prefixes=("APP_",),
    foreign={"APP_OTHER_PROGRAM"},
)


@dataclass(frozen=True)
class AppSettings:
    url: str
    bind: str = "127.0.0.1:1"
    workers: int = 2
    debug: bool = False
    root: Path | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)


def test_read_returns_what_is_set() -> None:
    values = TABLE.read({
        "APP_URL": "https://app.example/", "APP_WORKERS": "4", "APP_DEBUG": "ON", "APP_TAGS": "a, b,,",
        "APP_OTHER_PROGRAM": "x", "HOME": "/root",
    })
    assert values == {"url": "https://app.example", "workers": 4, "debug": True, "tags": ("a", "b")}
    assert AppSettings(**values).bind == "127.0.0.1:1"


@pytest.mark.parametrize(
    ("env", "named", "message"),
    [
        ({}, "APP_URL", "is required (where the app is)"),
        ({"APP_URL": "ftp://x"}, "APP_URL", "expected an http(s) URL, got 'ftp://x'"),
        ({"APP_URL": "http://x", "APP_WORKRES": "1"}, "APP_WORKRES", "unknown setting (known: APP_BIND, "),
        ({"APP_URL": "http://x", "APP_WORKERS": "9"}, "APP_WORKERS", "must be between 1 and 8, got 9"),
        ({"APP_URL": "http://x", "APP_WORKERS": "many"}, "APP_WORKERS", "expected an integer, got 'many'"),
        ({"APP_URL": "http://x", "APP_DEBUG": "maybe"}, "APP_DEBUG", "expected true or false, got 'maybe'"),
        ({"APP_URL": "http://x", "APP_BIND": "localhost"}, "APP_BIND", "expected HOST:PORT, got 'localhost'"),
    ],
)
def test_refusals_name_the_variable(env: dict[str, str], named: str, message: str) -> None:
    with pytest.raises(InvalidSetting) as info:
        TABLE.read(env)
    assert info.value.setting == named
    assert info.value.message.startswith(message)
    assert str(info.value).startswith(f"{named}: ")


def test_unknown_variables_are_refused_before_values_are_parsed() -> None:
    with pytest.raises(InvalidSetting) as info:
        TABLE.read({"APP_WORKERS": "many", "APP_ZZZ": "1"})
    assert info.value.setting == "APP_ZZZ"


def test_unknown_hint() -> None:
    table = SettingsTable([], owned_prefixes=("X_",), unknown_hint="see the manual")
    with pytest.raises(InvalidSetting, match=r"^X_Y: unknown setting \(see the manual\)$"):
        table.read({"X_Y": ""})


def test_blanks_are_parsed_unless_the_table_says_they_are_unset() -> None:
    strict = SettingsTable([Setting("A_N", "n", integer(0), 1, "n")], owned_prefixes=("A_",))
    with pytest.raises(InvalidSetting, match="A_N: expected an integer"):
        strict.read({"A_N": " "})
    lenient = SettingsTable([Setting("A_N", "n", integer(0), 1, "n"), Setting("A_R", "r", text, REQUIRED, "r")],
                            owned_prefixes=("A_",), blank_is_unset=True)
    assert lenient.read({"A_N": "  ", "A_R": "  kept  "}) == {"r": "kept"}
    with pytest.raises(InvalidSetting, match="A_R: is required"):
        lenient.read({"A_R": " "})


def test_parsers() -> None:
    assert integer(0)("4_096") == 4096
    assert boolean("No") is False
    assert host_port(allow_unix=True)("unix:/run/app.sock") == "unix:/run/app.sock"
    with pytest.raises(ValueError, match="HOST:PORT"):
        host_port()("unix:/run/app.sock")
    with pytest.raises(ValueError, match="HOST:PORT"):
        host_port()("127.0.0.1:70000")
    assert path(" /tmp/x ") == Path("/tmp/x")
    with pytest.raises(ValueError, match="must not be empty"):
        path(" ")
    assert optional_path("") is None
    assert optional_text("  ") is None
    assert http_url("") is None


def test_duplicate_rows_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="twice"):
        SettingsTable([Setting("A", "a", text, "", "a"), Setting("A", "b", text, "", "b")], owned_prefixes=())


def test_markdown_rows_and_defaults_agree_with_the_class() -> None:
    assert TABLE.markdown() == (
        "| variable | default | what |\n"
        "|---|---|---|\n"
        "| `APP_URL` | required | where the app is |\n"
        "| `APP_BIND` | `127.0.0.1:1` | address to listen on |\n"
        "| `APP_WORKERS` | `2` | workers \\| threads |\n"
        "| `APP_DEBUG` | `False` | debug mode |\n"
        "| `APP_ROOT` | — | data directory (default ./data) |\n"
        "| `APP_TAGS` | `()` | tags |\n"
    )
    assert TABLE.rows()[0] == ("APP_URL", "required", "where the app is")
    assert TABLE.names == {"APP_URL", "APP_BIND", "APP_WORKERS", "APP_DEBUG", "APP_ROOT", "APP_TAGS"}
    assert TABLE["APP_BIND"].default == "127.0.0.1:1"
    assert TABLE.mismatched_defaults(AppSettings) == []

    @dataclass(frozen=True)
    class Drifted(AppSettings):
        workers: int = 3

    assert TABLE.mismatched_defaults(Drifted) == ["APP_WORKERS"]


def test_exported_names() -> None:
    assert set(servicekit.__all__) == {
        "CONTEXT_FIELDS", "LOG_FORMATS", "JsonLogFormatter", "TextLogFormatter", "configure_logging",
        "log_format", "log_formatter",
        "DEFAULT_MAX_LOG_TEXT", "DEFAULT_SIGNALS", "DRAINING", "DRAIN_LINGER_S", "DRAIN_RETRY_AFTER_S",
        "REQUIRED", "InvalidSetting", "ServiceKitError", "Setting", "SettingsTable", "boolean",
        "comma_list", "harden_connections", "host_port", "http_url", "integer", "json_errors", "one_line",
        "unexpected_error", "DEFAULT_STATEMENT_TIMEOUT_S", "statement_timeout", "declares_body",
        "optional_path", "optional_text",
        "path", "render_settings_doc", "resolve_table", "serve_app", "table_refs", "text",
        # the deployment mode (servicekit/_mode.py) and the key parser it goes with
        "DEVELOPMENT", "MODES", "PRODUCTION", "Mode", "Requirement", "enforce_mode", "is_loopback_bind", "mode",
        "secret",
        "POSTGRES_SCHEMES", "REDIS_SCHEMES", "backend_url", "url_scheme",
        "PostgresMigration", "SchemaTooNew", "migrate_postgres",
        "AccessLogger", "ConnectionBalance",
        "child_span", "configure_tracing", "inject_trace", "server_span", "tracer", "tracing_configured",
        "new_request_id",
    }
    for name in servicekit.__all__:
        assert hasattr(servicekit, name)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgresql://db.internal/registry", "postgresql://db.internal/registry"),
        ("  sqlite:///var/r.sqlite3 ", "sqlite:///var/r.sqlite3"),
        ("./var/registry.sqlite3", "./var/registry.sqlite3"),
        ("", None),
    ],
)
def test_backend_url_accepts_the_schemes_that_exist(raw: str, expected: str | None) -> None:
    assert servicekit.backend_url("sqlite", *servicekit.POSTGRES_SCHEMES, allow_path=True)(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("mysql://db/registry", "unsupported scheme 'mysql'"),
        ("sqlite:registry", "expected sqlite://"),
        ("./var/registry.sqlite3", "expected a URL"),
    ],
)
def test_backend_url_refuses_other_schemes(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        servicekit.backend_url("sqlite", "redis")(raw)


def test_a_backend_url_with_an_unknown_scheme_stops_the_table_naming_the_setting() -> None:
    table = SettingsTable(
        [Setting("APP_DATABASE", "database", servicekit.backend_url("sqlite", allow_path=True), None, "db")],
        owned_prefixes=("APP_",),
    )
    with pytest.raises(InvalidSetting) as caught:
        table.read({"APP_DATABASE": "postgresql://db/app"})
    assert caught.value.setting == "APP_DATABASE"
    assert "postgresql" in caught.value.message
