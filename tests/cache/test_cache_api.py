"""The public surface of the cache package and its key validation."""

from __future__ import annotations

import pytest

import cache
from cache import (
    CacheCorrupted,
    CacheError,
    InvalidKey,
    artifact_relpath,
    validate_hex,
    validate_relpath,
    validate_target,
)


def test_exported_names_are_pinned() -> None:
    assert sorted(cache.__all__) == sorted(
        [
            "DEFAULT_ACCESS_PERSIST_INTERVAL",
            "DEFAULT_MAX_ARTIFACT_BYTES",
            "DEFAULT_MAX_BYTES",
            "DEFAULT_MAX_COMPILED_BYTES",
            "DEFAULT_MAX_COMPILED_ENTRIES",
            "DEFAULT_MIN_FREE_BYTES",
            "DEFAULT_SHARED_TIMEOUT",
            "ArtifactCache",
            "ArtifactRejected",
            "CacheClosed",
            "CacheCorrupted",
            "CacheEntry",
            "CacheError",
            "CacheFull",
            "CacheStats",
            "CompiledCache",
            "CompiledCacheStats",
            "DiskCache",
            "FileInfo",
            "Fill",
            "InvalidFill",
            "InvalidKey",
            "NotCached",
            "RemoteStore",
            "SharedArtifacts",
            "SingleFlight",
            "artifact_relpath",
            "default_remote_key",
            "open_artifact",
            "precompile_key",
            "seal_artifact",
            "validate_hex",
            "validate_relpath",
            "validate_target",
        ]
    )
    for name in cache.__all__:
        assert getattr(cache, name) is not None


def test_errors_form_one_tree_with_stable_codes() -> None:
    codes = {}
    for name in ("InvalidKey", "InvalidFill", "CacheCorrupted", "ArtifactRejected", "CacheClosed", "NotCached"):
        cls = getattr(cache, name)
        assert issubclass(cls, CacheError)
        codes[name] = cls.code
    assert len(set(codes.values())) == len(codes)
    err = CacheCorrupted("a" * 64, "entry.wasm", "sha256 mismatch")
    assert err.code == "cache_corrupted"
    assert "entry.wasm" in str(err)


@pytest.mark.parametrize("good", ["0" * 64, "0123456789abcdef" * 4])
def test_valid_hashes(good: str) -> None:
    assert validate_hex(good) == good


@pytest.mark.parametrize("bad", ["", "0" * 63, "0" * 65, "A" * 64, "z" * 64, "0" * 63 + "\n", " " + "0" * 63])
def test_invalid_hashes(bad: str) -> None:
    with pytest.raises(InvalidKey):
        validate_hex(bad)


@pytest.mark.parametrize("good", ["entry.wasm", "ui/assets/app.js", "precompiled/x.cwasm", "a..b", ".well-known/x"])
def test_valid_relpaths(good: str) -> None:
    assert validate_relpath(good) == good


@pytest.mark.parametrize(
    "bad", ["", "/abs", "a\\b", "..", "a/..", "../a", "a//b", "a/./b", "a/", "tab\tname", "nul\0", "x" * 1025]
)
def test_invalid_relpaths(bad: str) -> None:
    with pytest.raises(InvalidKey):
        validate_relpath(bad)


def test_targets() -> None:
    assert artifact_relpath("wasmtime-50.0.1.abc_def-x86_64") == "precompiled/wasmtime-50.0.1.abc_def-x86_64.cwasm"
    for bad in ("", ".", "..", "a/b", "a b", "é", "x" * 201, ".hidden"):
        with pytest.raises(InvalidKey):
            validate_target(bad)
