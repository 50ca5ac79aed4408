from __future__ import annotations

import json
from typing import Any

import pytest

from bundles import ALWAYS_GRANTED, KNOWN_CAPABILITIES, Manifest, ManifestError, parse_manifest
from tests.bundles._bundle_helpers import manifest_dict


def _with(path: str, value: Any) -> dict[str, Any]:
    """The default manifest with one field (dotted path, ``[i]`` for list items) replaced."""
    data = json.loads(json.dumps(manifest_dict()))
    target: Any = data
    parts = path.replace("[", ".").replace("]", "").split(".")
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = parts[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


def test_valid_manifest_is_parsed_and_normalized() -> None:
    raw = manifest_dict(capabilities=["  CAP:Http.Fetch ", "cap:http.fetch", "cap:secrets.get"])
    manifest = parse_manifest(json.dumps(raw).encode())
    assert manifest.name == "com.example.hello"
    assert manifest.version == "1.2.3"
    assert manifest.runtime == "wasm-js@1"
    assert manifest.capabilities == ("cap:http.fetch", "cap:secrets.get")
    assert manifest.ui is not None
    assert manifest.ui.entry == "ui/index.html"
    assert manifest.ui.hooks is not None
    assert manifest.ui.hooks.app_menu_label == "Hello"
    assert manifest.endpoints is not None
    assert [e.path for e in manifest.endpoints] == ["/items", "/items/:id", "/items"]
    assert manifest.entry is None
    # to_json round-trips to an equal manifest.
    assert parse_manifest(manifest.to_json()) == manifest


def test_capability_sets() -> None:
    assert len(KNOWN_CAPABILITIES) == 11
    assert {"cap:context.read", "cap:log.emit", "cap:user.read"} == ALWAYS_GRANTED
    assert ALWAYS_GRANTED <= KNOWN_CAPABILITIES


def test_minimal_manifest_and_wildcard_version() -> None:
    manifest = parse_manifest({"name": "x", "version": "2.0.*", "entry": "./build/ext.wasm"})
    assert manifest.version == "2.0.*"
    assert manifest.entry == "build/ext.wasm"
    assert manifest.capabilities == ()
    assert manifest.match_endpoint("GET", "/anything") is None
    assert json.loads(manifest.to_json()) == {
        "name": "x",
        "version": "2.0.*",
        "entry": "build/ext.wasm",
        "capabilities": [],
    }


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        (manifest_dict(name=None), "name", "required"),
        (manifest_dict(name=7), "name", "must be a string"),
        (manifest_dict(version="1.0"), "version", "semantic version"),
        (manifest_dict(version="01.2.3"), "version", "semantic version"),
        (manifest_dict(runtime="wasm js"), "runtime", "name@major"),
        (manifest_dict(capabilities=["cap:http.fetch", "cap:root.shell"]), "capabilities[1]", "unknown capability"),
        (manifest_dict(capabilities="cap:http.fetch"), "capabilities", "must be an array"),
        (_with("ui.type", "div"), "ui.type", "iframe"),
        (_with("ui.entry", "../escape.html"), "ui.entry", "'..'"),
        (_with("ui.hooks", {"clientPortalMenu": {"label": ""}}), "ui.hooks.clientPortalMenu.label", "empty"),
        (_with("api.endpoints[1].method", "FETCH"), "api.endpoints[1].method", "not one of"),
        (_with("api.endpoints[0].path", "items"), "api.endpoints[0].path", "start with '/'"),
        (_with("api.endpoints[0].path", "/items//x"), "api.endpoints[0].path", "empty"),
        (_with("api.endpoints[0].path", "/items/:1d"), "api.endpoints[0].path", ":param"),
        (_with("api.endpoints[0].path", "/a/:id/b/:id"), "api.endpoints[0].path", "twice"),
        (_with("api.endpoints[0].path", "/a?b=1"), "api.endpoints[0].path", "'?'"),
        (_with("api.endpoints[2]", {"method": "GET", "path": "/items/:other", "handler": "h"}), "api.endpoints[2]",
         "duplicates api.endpoints[1]"),
        (_with("api.endpoints[0]", {"method": "GET", "path": "/x"}), "api.endpoints[0].handler", "required"),
        (manifest_dict(assets=["ui/**", "/etc/*"]), "assets[1]", "relative"),
        (manifest_dict(precompiled={"x86_64-linux": "../a.cwasm"}), "precompiled.x86_64-linux", "'..'"),
        (manifest_dict(precompiled={"bad target": "a.cwasm"}), "precompiled.bad target", "target"),
        (manifest_dict(entry="dist\\main.wasm"), "entry", "forward slashes"),
        (manifest_dict(entry="/dist/main.wasm"), "entry", "relative"),
    ],
)
def test_invalid_manifest_names_the_field(data: dict[str, Any], path: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(json.dumps(data))
    assert info.value.path == path
    assert fragment in str(info.value)
    assert info.value.code == "invalid_manifest"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be an object"),
        (b'{"name": "a", "name": "b", "version": "1.0.0"}', "duplicate key"),
        (b'{"name": "\xff", "version": "1.0.0"}', "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
    ],
)
def test_undecodable_manifest(raw: bytes, fragment: str) -> None:
    with pytest.raises(ManifestError, match=fragment):
        parse_manifest(raw)


def _endpoints_manifest(*specs: tuple[str, str]) -> Manifest:
    return parse_manifest(
        {
            "name": "x",
            "version": "1.0.0",
            "api": {"endpoints": [{"method": m, "path": p, "handler": f"{m} {p}"} for m, p in specs]},
        }
    )


def test_match_endpoint_rules() -> None:
    manifest = _endpoints_manifest(
        ("GET", "/"), ("GET", "/items"), ("GET", "/items/:id"), ("GET", "/items/new"), ("DELETE", "/items/:id"),
        ("post", "/items/:id/notes/:note"),
    )

    def handler(method: str, path: str) -> str | None:
        endpoint = manifest.match_endpoint(method, path)
        return None if endpoint is None else endpoint.handler

    assert handler("GET", "/") == "GET /"
    assert handler("GET", "") == "GET /"
    assert handler("GET", "/items") == "GET /items"
    assert handler("GET", "items") == "GET /items"  # the gateway's {path...} has no leading slash
    assert handler("GET", "/items/42") == "GET /items/:id"
    assert handler("GET", "/items/new") == "GET /items/new"  # a literal segment beats a :param
    assert handler("DELETE", "/items/42") == "DELETE /items/:id"
    assert handler("POST", "/items/1/notes/2") == "post /items/:id/notes/:note"  # method normalized to POST
    # Exact method; same segment count; a :param matches exactly one non-empty segment.
    assert handler("get", "/items") is None
    assert handler("PUT", "/items/42") is None
    assert handler("GET", "/items/42/extra") is None
    assert handler("GET", "/items/") is None
    assert handler("GET", "/items//") is None
    assert handler("GET", "/other") is None
