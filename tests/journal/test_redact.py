"""Secret values never reach an entry: ``redact_secrets`` over the journal's tagged JSON values."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from journal import SECRET_MARKER, redact_secrets, secret_marker

TOKEN = "tok-3f9a7c"
SECRETS = {"API_TOKEN": TOKEN, "DB_PASSWORD": "hunter2", "EMPTY": ""}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_marker() -> None:
    assert secret_marker("API_TOKEN") == "«secret:API_TOKEN»"
    assert SECRET_MARKER.format(name="X") == "«secret:X»"


def test_occurrences_are_replaced_not_whole_values() -> None:
    # A replayed guest reads «secret:API_TOKEN» and builds the very same argument again.
    assert redact_secrets(f"Bearer {TOKEN}", SECRETS) == "Bearer «secret:API_TOKEN»"
    assert redact_secrets(TOKEN, SECRETS) == "«secret:API_TOKEN»"
    assert redact_secrets("nothing here", SECRETS) == "nothing here"


def test_a_whole_entry_is_redacted_everywhere() -> None:
    entry: dict[str, Any] = {
        "request": {"http": {"headers": {"x-token": TOKEN}, "body_b64": _b64(f"pw=hunter2&t={TOKEN}".encode())}},
        "calls": [
            {
                "i": 0,
                "fn": "alga:extension/secrets#get",
                "args": ["API_TOKEN"],
                "result": {"$v": "ok", "p": TOKEN},
            },
            {
                "i": 1,
                "fn": "alga:extension/http#fetch",
                "args": [
                    {
                        "$r": {
                            "url": f"https://api.example/?key={TOKEN}",
                            "headers": [{"$t": ["authorization", {"$b": _b64(f"Bearer {TOKEN}".encode())}]}],
                        }
                    }
                ],
                "result": {"$res": "response"},
            },
            {"i": 2, "fn": "x#y", "args": [], "result": {"$trap": "RuntimeError"}},
        ],
        "output": [{"stream": "log", "level": "info", "text": f"using hunter2 and {TOKEN}"}],
        "secrets_read": ["API_TOKEN", "DB_PASSWORD"],
        "result": {"status": 200, "headers": {TOKEN: "as a key"}, "body_b64": _b64(TOKEN.encode()), "error": None},
    }
    redacted = redact_secrets(entry, SECRETS)
    text = orjson.dumps(redacted)
    assert TOKEN.encode() not in text
    assert b"hunter2" not in text
    for encoded in (_b64(TOKEN.encode()), _b64(f"Bearer {TOKEN}".encode())):
        assert encoded.encode() not in text
    assert redacted["calls"][0]["args"] == ["API_TOKEN"]  # names stay: they are what replay answers by
    assert redacted["calls"][0]["result"] == {"$v": "ok", "p": "«secret:API_TOKEN»"}
    fetch = redacted["calls"][1]["args"][0]["$r"]
    assert fetch["url"] == "https://api.example/?key=«secret:API_TOKEN»"
    header = fetch["headers"][0]["$t"][1]["$b"]
    assert base64.b64decode(header) == "Bearer «secret:API_TOKEN»".encode()
    assert redacted["calls"][1]["result"] == {"$res": "response"}
    assert redacted["calls"][2]["result"] == {"$trap": "RuntimeError"}
    assert redacted["output"][0]["text"] == "using «secret:DB_PASSWORD» and «secret:API_TOKEN»"
    assert base64.b64decode(redacted["request"]["http"]["body_b64"]) == (
        "pw=«secret:DB_PASSWORD»&t=«secret:API_TOKEN»".encode()
    )
    assert redacted["result"]["headers"] == {"«secret:API_TOKEN»": "as a key"}
    assert base64.b64decode(redacted["result"]["body_b64"]) == "«secret:API_TOKEN»".encode()
    assert redacted["secrets_read"] == ["API_TOKEN", "DB_PASSWORD"]
    # the input is left as it was
    assert entry["calls"][0]["result"]["p"] == TOKEN


def test_a_secret_inside_another_is_replaced_whole() -> None:
    secrets = {"SHORT": "abc", "LONG": "xxabcxx"}
    assert redact_secrets("1 xxabcxx 2 abc", secrets) == "1 «secret:LONG» 2 «secret:SHORT»"


def test_raw_bytes_and_non_text_values() -> None:
    assert redact_secrets([b"k=hunter2", 5, None, True, 1.5], SECRETS) == [
        b"k=\xc2\xabsecret:DB_PASSWORD\xc2\xbb",
        5,
        None,
        True,
        1.5,
    ]


def test_no_secret_values_means_no_change() -> None:
    doc = {"a": ["b"]}
    assert redact_secrets(doc, {}) is doc
    assert redact_secrets(doc, {"EMPTY": ""}) is doc


def test_malformed_base64_is_redacted_as_text() -> None:
    assert redact_secrets({"$b": f"not base64 {TOKEN}"}, SECRETS) == {"$b": "not base64 «secret:API_TOKEN»"}
    assert redact_secrets({"body_b64": f"%%{TOKEN}"}, SECRETS) == {"body_b64": "%%«secret:API_TOKEN»"}
