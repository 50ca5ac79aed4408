"""Property tests of the ext-ui path parser: any string gives a clean path under the UI root, or a refusal.

``safe_relative_path`` sees the request path as the client sent it (percent-encoding included), so the
strategy mixes arbitrary text with the pieces of known tricks: dot segments, encoded separators, backslashes,
overlong UTF-8, NUL and other control or format characters, drive prefixes, decomposed Unicode.
"""

from __future__ import annotations

import posixpath
import unicodedata
from pathlib import PurePosixPath, PureWindowsPath
from urllib.parse import quote

from hypothesis import example, given
from hypothesis import strategies as st

from runner_trio._ui_paths import MAX_PATH_LENGTH, UnsafePath, safe_relative_path
from tests.fuzz import FUZZ

_PIECES = [
    "/", "//", ".", "..", "...", ".git", "a", "ui", "index.html", "é", "e\u0301", "\u212b", "A\u030a",
    "\\", "%5c", "%5C", "%2f", "%2F", "%2e", "%2E", "%2e%2e", "%c0%ae", "%c0%af", "%e0%80%ae", "%ff", "%",
    "%0", "%00", "\x00", "\x1f", "\x7f", "%7f", "\u2028", "\u200b", "\ufeff", "%ef%bb%bf", "\u202e",
    ":", "C:", "c:", "%3a", "file:", "~", "?", "#", " ", "%20", "\ud800", "\udcff", "%ed%a0%80",
    "\uff0e", "\u2024", "\u0387", "\u037e", "\uff0f", "\u2215", "\uff3c",
]
_TRICKY = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)
_SEGMENTS = st.lists(st.one_of(_TRICKY, st.text(max_size=8)), max_size=6).map("/".join)
_PATHS = st.one_of(_TRICKY, st.text(max_size=64), _SEGMENTS)


def _assert_safe(clean: str) -> None:
    assert isinstance(clean, str)
    if clean == "":
        return  # the UI root itself (served as index.html)
    assert not clean.startswith("/")
    assert "\\" not in clean
    assert "\x00" not in clean
    assert len(clean) <= MAX_PATH_LENGTH
    segments = clean.split("/")
    assert all(segment not in ("", ".", "..") for segment in segments)
    assert not any(segment.startswith(".") for segment in segments)
    assert not any(unicodedata.category(ch) in {"Cc", "Cf", "Cs"} for ch in clean)
    assert unicodedata.is_normalized("NFC", clean)
    assert posixpath.normpath(clean) == clean
    # Lexically under any root, whichever way the path is read.
    root = PurePosixPath("/srv/ui")
    assert PurePosixPath(posixpath.normpath(root / clean)).is_relative_to(root)
    windows = PureWindowsPath(clean)
    assert not windows.is_absolute()
    assert windows.drive == ""
    clean.encode("utf-8")  # no lone surrogate survives


@FUZZ
@given(_PATHS)
@example("\ud800")  # a lone surrogate raised UnicodeEncodeError from unquote_to_bytes instead of UnsafePath
@example("assets/\udcff.js")
@example("%2e%2e/secret")
@example("e\u0301/\u212b")
def test_any_path_is_clean_and_under_the_root_or_refused(raw: str) -> None:
    try:
        clean = safe_relative_path(raw)
    except UnsafePath:
        return
    _assert_safe(clean)


@FUZZ
@given(_PATHS)
@example("e\u0301/\u212b")
@example("a%20b/caf%C3%A9.png")
def test_a_clean_path_parses_to_itself(raw: str) -> None:
    """Cleaning is idempotent: the clean path, percent-encoded, is accepted and gives the same path back."""
    try:
        clean = safe_relative_path(raw)
    except UnsafePath:
        return
    assert safe_relative_path(quote(clean, safe="/")) == clean
