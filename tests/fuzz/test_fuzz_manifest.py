"""Property tests of ``bundles.parse_manifest``: any input gives a Manifest or a ManifestError, nothing else.

Three kinds of input: arbitrary bytes, arbitrary JSON values (as text and as decoded data), and objects shaped
like a manifest whose every key holds either a plausible value or arbitrary JSON, so that the deep branches
(endpoints, hooks, events, free-form values) are reached. A parsed manifest must also serialize and parse back
to itself, since the gateway stores ``Manifest.to_json()`` and parses it again.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from bundles import KNOWN_CAPABILITIES, Manifest, ManifestError, parse_manifest
from tests.fuzz import FUZZ

_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12),
    st.sampled_from(["", " ", "\x00", "\ud800", "1.0.0", "GET", "/x/:id", "ui/index.html", "..", "cap:log.emit"]),
)
JSON: st.SearchStrategy[Any] = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly plausible values, sometimes anything at all."""
    return st.one_of(valid, valid, valid, JSON)


_TEXT = st.one_of(st.text(min_size=1, max_size=16), st.sampled_from(["x", "com.acme.x", "dist/main", "\ud800"]))
_PATH = st.one_of(
    st.sampled_from(["/", "/items", "/items/:id", "/a/:b/c", "//", "/a/../b", "/:", "/x?y", "items", "/a/:id/:id"]),
    st.text(max_size=12).map(lambda s: "/" + s),
)
_ENDPOINT = st.fixed_dictionaries(
    {"method": _maybe(st.sampled_from(["GET", "post", "PUT", "PATCH", "DELETE", "HEAD", "FETCH"])),
     "path": _maybe(_PATH), "handler": _maybe(_TEXT)},
    optional={"schedulable": _maybe(st.booleans()), "auth": JSON},
)
_MENU = st.fixed_dictionaries({"label": _maybe(_TEXT)}, optional={"icon": JSON})
_HOOKS = st.fixed_dictionaries(
    {}, optional={"appMenu": _maybe(_MENU), "clientPortalMenu": _maybe(_MENU), "ticketTab": JSON, "": JSON}
)
_UI = st.fixed_dictionaries(
    {"type": _maybe(st.just("iframe")), "entry": _maybe(st.sampled_from(["ui/index.html", "./ui/a.html", "../x"]))},
    optional={"hooks": _maybe(_HOOKS), "routes": JSON, "theme": JSON},
)
_EVENT = st.fixed_dictionaries({"topic": _maybe(_TEXT), "handler": _maybe(_TEXT)}, optional={"retries": JSON})
_RELATIVE = st.sampled_from(["dist/main.wasm", "ui/**/*", "a/./b", "/abs", "a\\b", "x*", "", "a//b"])
MANIFESTS = st.fixed_dictionaries(
    {
        "name": _maybe(_TEXT),
        "version": _maybe(st.sampled_from(["1.2.3", "0.1.0-rc.1+build.5", "2.0.*", "01.2.3", "1.2", "1.2.3-"])),
    },
    optional={
        "publisher": _maybe(_TEXT),
        "runtime": _maybe(st.sampled_from(["wasm-js@1", "wasm js", "x@01", "py@2"])),
        "entry": _maybe(_RELATIVE),
        "capabilities": _maybe(st.lists(st.sampled_from([*sorted(KNOWN_CAPABILITIES), " CAP:Log.Emit ", "x"]))),
        "ui": _maybe(_UI),
        "api": _maybe(st.fixed_dictionaries({"endpoints": _maybe(st.lists(_ENDPOINT, max_size=4))})),
        "events": _maybe(st.lists(_EVENT, max_size=3)),
        "assets": _maybe(st.lists(_RELATIVE, max_size=3)),
        "precompiled": _maybe(st.dictionaries(st.sampled_from(["x86_64-linux-gnu", "bad target", ""]), _RELATIVE)),
        "sbom": _maybe(_TEXT),
        "capabilites": JSON,
    },
)


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _check(result: Manifest) -> None:
    text = result.to_json()
    text.encode("utf-8")  # storable: no lone surrogate made it through
    again = parse_manifest(text, strict=True)  # nothing outside the schema is written back out
    assert again == result
    assert all(warning.isprintable() for warning in result.warnings)


def _parse(raw: Any) -> None:
    try:
        manifest = parse_manifest(raw)
    except ManifestError:
        return  # the package's manifest error, and only it: anything else fails the property
    _check(manifest)
    try:
        strict = parse_manifest(raw, strict=True)
    except ManifestError:
        assert manifest.unknown_fields
        return
    assert strict == manifest
    assert not strict.unknown_fields


@FUZZ
@given(st.binary(max_size=256))
@example(b"1" * 5000)  # int() beyond sys.get_int_max_str_digits() raised ValueError, not ManifestError
@example(b'{"name": "x", "version": "1.0.0", "x": ' + b"9" * 4301 + b"}")
@example(b"\xef\xbb\xbf{}")
def test_any_bytes(raw: bytes) -> None:
    _parse(raw)


@FUZZ
@given(JSON)
@example(None)  # decoded data other than an object went to json.loads and raised TypeError
@example([{"name": "x", "version": "1.0.0"}])
def test_any_json_value_as_text_and_as_data(value: Any) -> None:
    _parse(json.dumps(value))
    _parse(value)


@FUZZ
@given(MANIFESTS)
@example({"name": "x", "version": "1.0.0", "publisher": "\ud800"})  # a lone surrogate could not be stored
# Free-form values are bounded in depth, so that to_json can always write them back out:
@example({"name": "x", "version": "1.0.0", "ui": {"type": "iframe", "entry": "i.html", "routes": _nested(40)}})
@example({"name": "x", "version": "1.0.0", "ui": {"type": "iframe", "entry": "i.html", "hooks": {"\udc80": 1}}})
def test_manifest_shaped_objects(value: dict[str, Any]) -> None:
    _parse(json.dumps(value))
    _parse(value)
