"""Crash safety: a process dying at any step of an insert leaves the old state or the new one, never a mix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from cache import DiskCache
from tests.cache.cache_testkit import Source

Consistent = Callable[[Path], dict[str, dict[str, bytes]]]

CHILD = Path(__file__).with_name("crash_child.py")
PROJECT = Path(__file__).resolve().parents[2]
HEX = "ab" * 32
CRASH_STATUS = 17
FULL = {"entry.wasm", "ui/index.html"}


def run_child(root: Path, scenario: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.run(
        [sys.executable, str(CHILD), str(root), HEX, scenario],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def own_scratch_only(root: Path) -> None:
    names = os.listdir(root / ".tmp")
    assert len(names) == 2, names  # this cache's <token>.lock and <token>/
    token = next(n for n in names if not n.endswith(".lock"))
    assert sorted(names) == sorted([token, f"{token}.lock"])
    assert os.listdir(root / ".tmp" / token) == []


@pytest.mark.parametrize(
    ("scenario", "files_after"),
    [
        # A fresh insert: the entry appears complete or not at all.
        ("fill:mid-fill", None),
        ("fill:rename-1-before", None),
        ("fill:rename-1-after", FULL),
        ("fill:none", FULL),
        # A file added to an existing entry (a precompiled artifact): data file, then index.json.
        ("add:replace-1-before", FULL),
        ("add:replace-1-after", FULL),
        ("add:replace-2-before", FULL),
        ("add:replace-2-after", FULL | {"precompiled/t.cwasm"}),
        # A lazily filled subtree: directory rename, then index.json.
        ("subtree:mid-fill", FULL),
        ("subtree:rename-1-after", FULL),
        ("subtree:replace-1-before", FULL),
        ("subtree:replace-1-after", FULL | {"site/index.html"}),
        # A removed file: index.json first, then the file.
        ("remove:replace-1-before", FULL),
        ("remove:replace-1-after", {"entry.wasm"}),
    ],
)
async def test_crash_at_each_step_leaves_a_consistent_cache(
    tmp_path: Path, scenario: str, files_after: set[str] | None, consistent: Consistent
) -> None:
    root = tmp_path / "cache"
    done = await trio.to_thread.run_sync(run_child, root, scenario)
    expected_status = 0 if scenario.endswith(":none") else CRASH_STATUS
    assert done.returncode == expected_status, done.stderr

    async with DiskCache(root) as cache:
        own_scratch_only(root)
        entries = consistent(root)
        if files_after is None:
            assert entries == {}
            assert not cache.contains(HEX)
        else:
            assert set(entries[HEX]) == files_after
            assert cache.statistics().bytes == sum(len(d) for d in entries[HEX].values())
            async with cache.entry(HEX, _unexpected_fill) as entry:
                for rel in files_after:
                    await entry.verify(rel, full=True)
    assert os.listdir(root / ".tmp") == []


async def _unexpected_fill(dest: Path) -> None:
    raise AssertionError("the entry should have been cached")


async def test_killed_process_scratch_is_kept_while_alive_and_cleaned_after(
    tmp_path: Path, source: Callable[..., Source], consistent: Consistent
) -> None:
    root = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    child = subprocess.Popen(  # noqa: ASYNC220 - killed below; output read through a worker thread
        [sys.executable, str(CHILD), str(root), HEX, "fill:hang"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None
        line = await trio.to_thread.run_sync(child.stdout.readline)
        assert line.strip() == "filling"
        child_scratch = {n for n in os.listdir(root / ".tmp") if not n.endswith(".lock")}
        assert len(child_scratch) == 1
        (token,) = child_scratch
        assert os.listdir(root / ".tmp" / token)  # the fill in progress

        async with DiskCache(root):
            # The child is alive and holds its lock: its fill in progress must not be removed.
            assert os.listdir(root / ".tmp" / token)
    finally:
        child.send_signal(signal.SIGKILL)
        await trio.to_thread.run_sync(child.wait)
        assert child.stdout is not None
        child.stdout.close()

    src = source("a")
    async with DiskCache(root) as cache:
        assert token not in os.listdir(root / ".tmp")
        own_scratch_only(root)
        assert consistent(root) == {}
        async with cache.entry(src.hex, src.fill) as entry:
            assert await entry.open_verified("entry.wasm") == src.files["entry.wasm"]


async def test_failed_or_cancelled_fills_leave_nothing_and_are_retried(
    cache_root: Path, source: Callable[..., Source], consistent: Consistent
) -> None:
    src = source("a")
    attempts = 0

    async def failing_fill(dest: Path) -> None:
        nonlocal attempts
        attempts += 1
        (dest / "entry.wasm").write_bytes(b"half")
        if attempts == 1:
            raise OSError("connection reset while fetching")
        await trio.sleep_forever()

    async with DiskCache(cache_root) as cache:
        with pytest.raises(OSError, match="connection reset"):
            async with cache.entry(src.hex, failing_fill):
                pass
        own_scratch_only(cache_root)
        with trio.move_on_after(0.05):
            async with cache.entry(src.hex, failing_fill):
                pass
        own_scratch_only(cache_root)
        assert consistent(cache_root) == {}
        async with cache.entry(src.hex, src.fill) as entry:
            assert await entry.open_verified("entry.wasm") == src.files["entry.wasm"]
        assert cache.statistics().fills == 3


async def test_entries_without_a_valid_index_are_removed_at_start(
    cache_root: Path, source: Callable[..., Source], consistent: Consistent
) -> None:
    good = source("good")
    async with DiskCache(cache_root) as cache, cache.entry(good.hex, good.fill):
        pass
    no_index, bad_json, missing_file, wrong_size, foreign = (c * 64 for c in "12345")
    for name in (no_index, bad_json, missing_file, wrong_size):
        (cache_root / name).mkdir()
        (cache_root / name / "entry.wasm").write_bytes(b"data")
    (cache_root / bad_json / "index.json").write_text("{not json")
    good_index = (cache_root / good.hex / "index.json").read_text().replace(good.hex, missing_file)
    (cache_root / missing_file / "index.json").write_text(good_index)
    (cache_root / missing_file / "entry.wasm").unlink()
    (cache_root / wrong_size / "index.json").write_text(good_index.replace(missing_file, wrong_size))
    (cache_root / "not-an-entry").mkdir()  # not ours: left alone
    (cache_root / foreign).write_bytes(b"a file where an entry should be")

    async with DiskCache(cache_root) as cache:
        assert sorted(os.listdir(cache_root)) == sorted([".locks", ".tmp", good.hex, "not-an-entry"])
        assert cache.statistics().entries == 1
    (cache_root / "not-an-entry").rmdir()
    assert set(consistent(cache_root)) == {good.hex}
