"""The gateway's cache of parsed manifests: least recently used entries go first; a bad manifest is a 500."""

from __future__ import annotations

import json

import pytest

from gateway_quart import ApiError
from gateway_quart._state import ManifestCache
from gateway_quart.registry import Version

from ._helpers import manifest

MANIFEST_JSON = json.dumps(manifest())


def version(version_id: str, manifest_json: str = MANIFEST_JSON) -> Version:
    return Version(version_id, "ext-1", "1.0.0", "a" * 64, manifest_json, "unsigned", "2026-01-01T00:00:00Z")


def test_least_recently_used_manifest_is_parsed_again() -> None:
    cache = ManifestCache(max_entries=2)
    first = {name: cache.get(version(name)) for name in ("a", "b")}
    assert cache.get(version("a")) is first["a"]  # "a" becomes the most recently used
    cache.get(version("c"))  # evicts "b"
    assert cache.get(version("a")) is first["a"]
    assert cache.get(version("b")) is not first["b"]


def test_zero_entries_parses_every_time() -> None:
    cache = ManifestCache(max_entries=0)
    assert cache.get(version("a")) is not cache.get(version("a"))


def test_an_invalid_stored_manifest_is_a_server_error() -> None:
    with pytest.raises(ApiError) as info:
        ManifestCache().get(version("a", "{}"))
    assert (info.value.status, info.value.code) == (500, "invalid_manifest")
