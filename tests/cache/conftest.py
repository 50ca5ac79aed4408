"""Fixtures for the cache tests: content sources whose fills count their calls, and a tree checker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cache.cache_testkit import Source, assert_consistent


@pytest.fixture
def source() -> Callable[..., Source]:
    """``source(tag, size=100, files=None)``: a new `Source`; by default one ``entry.wasm`` of ``size`` bytes."""

    def make(tag: str = "a", *, size: int = 100, files: dict[str, bytes] | None = None) -> Source:
        if files is None:
            files = {"entry.wasm": (tag.encode() * size)[:size]}
        return Source(files, tag=tag)

    return make


@pytest.fixture
def cache_root(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def consistent() -> Callable[[Path], dict[str, dict[str, bytes]]]:
    return assert_consistent
