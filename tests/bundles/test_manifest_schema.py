"""The published JSON Schema of manifest.json (``bundles/manifest.schema.json``) and the validator agree.

The shipped file must be what ``python -m bundles`` generates from the validator's rules, and both must judge
the same documents alike: every manifest the validator accepts (the samples', the examples', the tests') is
valid against the schema, and every one it refuses is refused by the schema too, where a JSON Schema can say it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given

import bundles
from bundles import ManifestError, manifest_schema, manifest_schema_text, parse_manifest
from tests.bundles import test_manifest as manifest_cases
from tests.bundles import test_manifest_reference as reference_cases
from tests.bundles._bundle_helpers import manifest_dict
from tests.fuzz import FUZZ
from tests.fuzz.test_fuzz_manifest import MANIFESTS

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = Path(bundles.__file__).with_name(bundles.MANIFEST_SCHEMA_NAME)
# What a JSON Schema cannot say; parse_manifest alone refuses these.
NOT_EXPRESSIBLE = ("duplicates api.endpoints", "appears twice", "lone surrogate", "nested more than")

VALIDATOR = jsonschema.Draft202012Validator(manifest_schema())


def _schema_accepts(document: Any) -> bool:
    return bool(VALIDATOR.is_valid(document))


def _files() -> list[Path]:
    found = sorted(ROOT.glob("samples/*/manifest.json")) + sorted(ROOT.glob("examples/*/manifest.json"))
    assert found, "no sample manifests found"
    return found


def _parametrized(test: Any, argname: str) -> list[Any]:
    """The values a test of the validator is parametrized with (its own cases, not a copy of them)."""
    (mark,) = [m for m in test.pytestmark if m.name == "parametrize"]
    names = [n.strip() for n in mark.args[0].split(",")] if isinstance(mark.args[0], str) else list(mark.args[0])
    index = names.index(argname)
    return [case[index] if len(names) > 1 else case for case in mark.args[1]]


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    target: Any = out
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return out


VALID: list[Any] = [
    manifest_dict(),
    reference_cases.SCHEDULER_DEMO,
    reference_cases.REPORTING,
    reference_cases.DOCUMENTED,
    {"name": "x", "version": "1.0.*"},
    {"$schema": "./manifest.schema.json", "name": "x", "version": "1.0.0-rc.1+build.5"},
    manifest_dict(capabilities=[" CAP:HTTP.Fetch ", "cap:storage.kv", "cap:storage.kv"]),  # trimmed, any case
    manifest_dict(publisher=None, runtime=None, ui=None, api=None, assets=None, entry=None, sbom=None),
    manifest_dict(entry="./build/ext.wasm", assets=["ui/**/*.js", "img/?.png", "[ab].txt"]),
    manifest_dict(api={"endpoints": [{"method": "get", "path": "/", "handler": "root"},
                                     {"method": "POST", "path": "/items/:id/notes/:note_1", "handler": "n",
                                      "schedulable": True}]}),
    manifest_dict(precompiled={"x86_64-linux.v2": "precompiled/a.cwasm"}, events=[{"topic": "t", "handler": "h"}]),
    manifest_dict(ui={"type": "iframe", "entry": "ui/index.html", "routes": [{"any": {"thing": [1]}}],
                      "hooks": {"appMenu": {"label": "Hi"}, "custom": {"free": "form"}}}),
    manifest_dict(capabilites=["cap:http.fetch"]),  # a key outside the schema: accepted with a warning
    manifest_dict(egress=["API.example.com", "*.example.org:8443"], secrets=["API_KEY", "API_KEY"]),
]

INVALID: list[Any] = [
    *_parametrized(manifest_cases.test_invalid_manifest_names_the_field, "data"),
    *_parametrized(reference_cases.test_wrong_types_of_reference_keys_name_the_field, "data"),
    [{"name": "x", "version": "1.0.0"}],
    None,
    {"$schema": 5, "name": "x", "version": "1.0.0"},
    manifest_dict(name="   "),
    manifest_dict(name="a" * 257),
    manifest_dict(name="tab\there"),
    manifest_dict(version=None),
    manifest_dict(entry="dist/*.wasm"),
    manifest_dict(entry="dist/./main.wasm"),
    manifest_dict(entry="dist/"),
    manifest_dict(ui={"type": "iframe"}),
    manifest_dict(ui={"type": None, "entry": "ui/index.html"}),
    manifest_dict(api={"endpoints": None}),
    manifest_dict(api={"endpoints": [{"method": "GET", "path": "/a b", "handler": "h"}]}),
    manifest_dict(api={"endpoints": [{"method": "GET", "path": "/a:b", "handler": "h"}]}),
    manifest_dict(api={"endpoints": [{"method": "GET", "path": "/items/", "handler": "h"}]}),
    manifest_dict(api={"endpoints": [{"method": " GET", "path": "/x", "handler": "h"}]}),
    manifest_dict(api={"endpoints": [{"method": "GET", "path": "/x", "handler": "h", "schedulable": None}]}),
    manifest_dict(capabilities=[None]),
    manifest_dict(assets=["ui/../secret"]),
    manifest_dict(sbom="s" * 1025),
    manifest_dict(egress="api.example.com"),
    manifest_dict(secrets=["  "]),
]


def test_the_shipped_schema_is_what_the_validator_generates() -> None:
    assert SHIPPED.read_text(encoding="utf-8") == manifest_schema_text(), (
        "bundles/manifest.schema.json is stale: run `.venv/bin/python -m bundles` and commit it"
    )
    jsonschema.Draft202012Validator.check_schema(json.loads(SHIPPED.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_manifest_is_valid_for_both(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    parse_manifest(path.read_bytes())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(document)]
    assert errors == []


@pytest.mark.parametrize("document", VALID)
def test_documents_the_validator_accepts_the_schema_accepts(document: Any) -> None:
    parse_manifest(document)
    assert _schema_accepts(document)


@pytest.mark.parametrize("document", INVALID)
def test_documents_the_validator_refuses_the_schema_refuses(document: Any) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(document)
    if not any(fragment in str(info.value) for fragment in NOT_EXPRESSIBLE):
        assert not _schema_accepts(document), f"the schema accepts what the validator refuses: {info.value}"


@FUZZ
@given(MANIFESTS)
def test_the_schema_and_the_validator_agree_on_generated_manifests(document: dict[str, Any]) -> None:
    """Manifest-shaped objects whose keys hold plausible values or anything at all (tests/fuzz's generator)."""
    refusal: str | None = None
    try:
        parse_manifest(document)
    except ManifestError as exc:
        refusal = str(exc)
    if refusal is None:
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(document)]
        assert errors == [], "the schema refuses what the validator accepts"
    elif not any(fragment in refusal for fragment in NOT_EXPRESSIBLE):
        assert not _schema_accepts(document), f"the schema accepts what the validator refuses: {refusal}"


def test_the_validator_knows_the_schema_key() -> None:
    """Authors add ``"$schema"`` for their editor: it is no unknown key, even under ``--strict``."""
    manifest = parse_manifest({"$schema": "./manifest.schema.json", "name": "x", "version": "1.0.0"}, strict=True)
    assert manifest.warnings == ()


def test_each_capability_and_method_is_offered_for_completion() -> None:
    schema = manifest_schema()
    capability = schema["properties"]["capabilities"]["anyOf"][1]["items"]["anyOf"][0]
    assert capability["enum"] == sorted(bundles.KNOWN_CAPABILITIES)
    for capability_name in bundles.KNOWN_CAPABILITIES:
        assert _schema_accepts(manifest_dict(capabilities=[capability_name]))
    for method in bundles.HTTP_METHODS:
        assert _schema_accepts(_set(manifest_dict(), "api", {"endpoints": [
            {"method": method, "path": "/x", "handler": "h"}]}))
