"""Helpers for the cache tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import trio
import trio.lowlevel


class Source:
    """The files of one bundle and a fill that writes them, counting how often it ran."""

    def __init__(self, files: dict[str, bytes], *, tag: str = "") -> None:
        self.files = files
        self.hex = hashlib.sha256(tag.encode() + repr(sorted(files.items())).encode()).hexdigest()
        self.fills = 0
        self.release = trio.Event()
        self.release.set()
        self.error: BaseException | None = None

    async def fill(self, dest: Path) -> None:
        self.fills += 1
        # Let every concurrent caller reach the cache before this fill completes.
        await trio.lowlevel.checkpoint()
        await self.release.wait()
        if self.error is not None:
            raise self.error
        for rel, data in self.files.items():
            path = dest / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def tree_files(top: Path) -> dict[str, bytes]:
    """Every regular file under ``top`` by relative POSIX path."""
    out: dict[str, bytes] = {}
    for dirpath, _, filenames in os.walk(top):
        for name in filenames:
            path = Path(dirpath) / name
            out[path.relative_to(top).as_posix()] = path.read_bytes()
    return out


def assert_consistent(root: Path) -> dict[str, dict[str, bytes]]:
    """Check that every entry's files are exactly those index.json lists, with their sizes and sha256.

    Returns the entries' files (without index.json) by hash.
    """
    entries: dict[str, dict[str, bytes]] = {}
    for name in os.listdir(root):
        if name in {".tmp", ".locks"}:  # scratch areas; the lock files of processes sharing the root
            continue
        files = tree_files(root / name)
        index = json.loads(files.pop("index.json"))
        assert index["hex"] == name
        assert set(index["files"]) == set(files), (name, sorted(index["files"]), sorted(files))
        for rel, data in files.items():
            assert index["files"][rel] == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        assert index["total_bytes"] == sum(len(d) for d in files.values())
        entries[name] = files
    return entries


