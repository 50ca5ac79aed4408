"""The manifest's JSON Schema, generated from the validator's own rules (``bundles/manifest.schema.json``).

Editors check a ``manifest.json`` against it as the author types (``"$schema": "./manifest.schema.json"``, or
wherever ``extctl manifest-schema --out`` put it). It is built from the constants :mod:`bundles._manifest`
validates with (capability names, methods, length limits, the version, runtime, path and target grammars), and
``tests/bundles/test_manifest_schema.py`` checks that the file is what this module generates and that both
judge the same documents alike. What a JSON Schema cannot say is left to ``parse_manifest``: duplicate JSON
keys, duplicate endpoints or ``:param`` names, lone surrogates, the nesting limit of free-form values.

Keys outside the schema are allowed here as there (``parse_manifest`` warns about them; ``--strict`` refuses).
An optional key that is ``null`` counts as absent, as in the validator.

Regenerate with ``python -m bundles`` after changing the validator.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Final

from ._manifest import (
    _BAD_SEGMENT_CHARS,
    _MAX_TEXT,
    _PARAM_RE,
    _RUNTIME_RE,
    _SEMVER_RE,
    _TARGET_RE,
    _WILDCARD_VERSION_RE,
    HTTP_METHODS,
    KNOWN_CAPABILITIES,
)

__all__ = ["MANIFEST_SCHEMA_NAME", "manifest_schema", "manifest_schema_text"]

MANIFEST_SCHEMA_NAME: Final = "manifest.schema.json"
_DRAFT: Final = "https://json-schema.org/draft/2020-12/schema"
_LONG_TEXT: Final = 1024
# Every text: something other than whitespace, no control characters (_text in _manifest).
_NOT_BLANK: Final = r"\S"
_NO_CONTROL: Final = r"^[^\u0000-\u001f\u007f]*$"
# One path segment inside the bundle: not empty, not '.' or '..', no separator (_relative_path in _manifest).
_SEGMENT: Final = r"(?!\.\.?(?:/|$))[^/\\{forbid}]+"


def _text(max_length: int = _MAX_TEXT, *, pattern: str | None = None) -> dict[str, Any]:
    patterns = [_NOT_BLANK, _NO_CONTROL] + ([pattern] if pattern else [])
    out: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": max_length}
    if len(patterns) == 1:
        out["pattern"] = patterns[0]
    else:
        out["allOf"] = [{"pattern": p} for p in patterns]
    return out


def _optional(schema: dict[str, Any]) -> dict[str, Any]:
    """``null`` is the same as leaving the key out."""
    return {"anyOf": [{"type": "null"}, schema]}


def _any_case(word: str) -> str:
    """A regex for ``word`` in any letter case (JSON Schema regexes have no flags)."""
    out = []
    for ch in word:
        if ch.isalpha():
            out.append(f"[{ch.lower()}{ch.upper()}]")
        elif ch.isalnum() or ch in "_-:@":
            out.append(ch)
        else:
            out.append("\\" + ch)
    return "".join(out)


def _one_of_words(words: frozenset[str], *, padded: bool) -> dict[str, Any]:
    """The canonical spellings (for completion), or any case, trimmed when ``padded`` (as the validator reads)."""
    space = r"\s*" if padded else ""
    alternatives = "|".join(_any_case(word) for word in sorted(words))
    return {"anyOf": [{"enum": sorted(words)}, {"type": "string", "pattern": f"^{space}(?:{alternatives}){space}$"}]}


def _relative_path(*, glob: bool) -> dict[str, Any]:
    forbid = r"\u0000-\u001f\u007f" + ("" if glob else r"*?\[")
    segment = _SEGMENT.format(forbid=forbid)
    return _text(_LONG_TEXT, pattern=rf"^(?:\./)*{segment}(?:/{segment})*$")


def _endpoint_path() -> dict[str, Any]:
    bad = _BAD_SEGMENT_CHARS.pattern.removeprefix("[").removesuffix("]")  # \s?#\\ and the controls
    param = _PARAM_RE.pattern
    literal = rf"(?!\.\.?(?:/|$))[^/:{bad}]+"
    segment = f"(?:{param}|{literal})"
    return _text(_LONG_TEXT, pattern=rf"^/(?:{segment}(?:/{segment})*)?$")


def _menu_hook() -> dict[str, Any]:
    return _optional({"type": "object", "required": ["label"], "properties": {"label": _text()}})


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``manifest.json``, as data."""
    version = f"^(?:{_SEMVER_RE.pattern}|{_WILDCARD_VERSION_RE.pattern})$"
    return {
        "$schema": _DRAFT,
        "title": "ext-runtime extension manifest (manifest.json)",
        "description": "Generated from bundles.parse_manifest's rules (python -m bundles); docs/manifest.md "
        "explains each key. Keys outside the schema are accepted with a warning (extctl pack --strict refuses "
        "them).",
        "type": "object",
        "required": ["name", "version"],
        "properties": {
            "$schema": {"type": "string", "description": "where an editor finds this schema"},
            "name": _text(),
            "version": _text(pattern=version),
            "publisher": _optional(_text()),
            "runtime": _optional(_text(pattern=f"^{_RUNTIME_RE.pattern}$")),
            "entry": _optional(_relative_path(glob=False)),
            "capabilities": _optional({"type": "array", "items": _one_of_words(KNOWN_CAPABILITIES, padded=True)}),
            "ui": _optional({
                "type": "object",
                "required": ["type", "entry"],
                "properties": {
                    "type": {"const": "iframe"},
                    "entry": _relative_path(glob=False),
                    "hooks": _optional({
                        "type": "object",
                        "properties": {"appMenu": _menu_hook(), "clientPortalMenu": _menu_hook()},
                    }),
                    "routes": {"description": "free-form, carried as given"},
                },
            }),
            "api": _optional({
                "type": "object",
                "required": ["endpoints"],
                "properties": {
                    "endpoints": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["method", "path", "handler"],
                            "properties": {
                                "method": {"allOf": [_text(), _one_of_words(HTTP_METHODS, padded=False)]},
                                "path": _endpoint_path(),
                                "handler": _text(),
                                "schedulable": {"type": "boolean"},
                            },
                        },
                    },
                },
            }),
            "events": _optional({
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["topic", "handler"],
                    "properties": {"topic": _text(), "handler": _text()},
                },
            }),
            "assets": _optional({"type": "array", "items": _relative_path(glob=True)}),
            "precompiled": _optional({
                "type": "object",
                "propertyNames": {"pattern": f"^{_TARGET_RE.pattern}$"},
                "additionalProperties": _relative_path(glob=False),
            }),
            "sbom": _optional(_text(_LONG_TEXT)),
            "egress": _optional({"type": "array", "items": _text()}),
            "secrets": _optional({"type": "array", "items": _text()}),
        },
    }


def manifest_schema_text() -> str:
    """The schema as the shipped file holds it (two-space indent, a final newline)."""
    return json.dumps(manifest_schema(), indent=2, ensure_ascii=True) + "\n"


def shipped_schema_text() -> str:
    """The text of ``bundles/manifest.schema.json`` as installed with the package."""
    return resources.files(__package__).joinpath(MANIFEST_SCHEMA_NAME).read_text(encoding="utf-8")
