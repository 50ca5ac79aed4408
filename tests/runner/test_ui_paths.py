"""The pure rules of ext-ui serving: hostile paths, content types, CSP, ranges."""

from __future__ import annotations

import pytest

from contract import ContentHashError
from runner_trio._ui_paths import (
    DEFAULT_CSP,
    ByteRange,
    UnsafePath,
    build_csp,
    content_type_for,
    parse_range,
    parse_ui_content_hash,
    safe_relative_path,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("", ""),
        ("index.html", "index.html"),
        ("assets/app.js", "assets/app.js"),
        ("assets//app.js", "assets/app.js"),
        ("assets/", "assets"),
        ("a%20b.txt", "a b.txt"),
        ("caf%C3%A9.png", "café.png"),
    ],
)
def test_clean_paths(raw: str, clean: str) -> None:
    assert safe_relative_path(raw) == clean


@pytest.mark.parametrize(
    "raw",
    [
        "../secret",
        "a/../../secret",
        "%2e%2e/secret",
        "%2E%2E%2Fsecret",
        "a%2f..%2fb",
        "a%5c..%5cb",
        "a\\b",
        "/etc/passwd",
        "a%00.html",
        "a\x01b",
        ".env",
        "assets/.git/config",
        "%c0%ae%c0%ae/secret",  # overlong UTF-8 for '..'
        "%ff",
        "C:/windows",
        "x" * 2000,
    ],
)
def test_hostile_paths_are_refused(raw: str) -> None:
    with pytest.raises(UnsafePath):
        safe_relative_path(raw)


def test_content_types() -> None:
    assert content_type_for("index.html") == "text/html; charset=utf-8"
    assert content_type_for("app.JS") == "text/javascript; charset=utf-8"
    assert content_type_for("x.woff2") == "font/woff2"
    assert content_type_for("noext") == "application/octet-stream"
    assert content_type_for("data.unknownext") == "application/octet-stream"


def test_csp() -> None:
    assert build_csp() == DEFAULT_CSP
    assert build_csp(frame_ancestors="https://app.example.com").endswith(
        "; frame-ancestors https://app.example.com"
    )
    assert build_csp(override="default-src 'none';") == "default-src 'none'"


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("bytes=0-9", 100, ByteRange(0, 9)),
        ("bytes=90-", 100, ByteRange(90, 99)),
        ("bytes=-10", 100, ByteRange(90, 99)),
        ("bytes=50-500", 100, ByteRange(50, 99)),
        ("bytes=100-", 100, False),
        ("bytes=5-1", 100, False),
        ("bytes=0-1,5-6", 100, None),
        ("items=0-1", 100, None),
    ],
)
def test_ranges(header: str | None, size: int, expected: object) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=-0", 100, False),  # an empty suffix is unsatisfiable, not malformed
        ("bytes=-500", 100, ByteRange(0, 99)),  # a suffix longer than the file is the whole file (RFC 9110)
        ("bytes=-5", 0, False),
        ("bytes=0-0", 1, ByteRange(0, 0)),
        ("bytes=-", 100, None),
        ("bytes=x-1", 100, None),
        ("bytes=5-1,7-8", 100, None),
        ("", 100, None),
    ],
)
def test_range_edges(header: str, size: int, expected: object) -> None:
    assert parse_range(header, size) == expected

@pytest.mark.parametrize("raw", ["\ud800", "assets/\udcff.js", "%ed%a0%80"])
def test_lone_surrogates_are_refused_not_crashing(raw: str) -> None:
    """Found by tests/fuzz: unescaped lone surrogates raised UnicodeEncodeError instead of UnsafePath."""
    with pytest.raises(UnsafePath, match="UTF-8"):
        safe_relative_path(raw)


def test_ui_content_hash_takes_the_prefixed_and_the_bare_form() -> None:
    hex_digest = "ab" * 32
    for segment in (f"sha256:{hex_digest}", hex_digest, hex_digest.upper(), f"sha256:{hex_digest.upper()}"):
        assert parse_ui_content_hash(segment) == hex_digest
    for bad in ("", hex_digest[:-1], f" {hex_digest}", f"{hex_digest}\n", f"SHA256:{hex_digest}", f"sha:{hex_digest}",
                f"sha256:{hex_digest}0"):
        with pytest.raises(ContentHashError):
            parse_ui_content_hash(bad)
