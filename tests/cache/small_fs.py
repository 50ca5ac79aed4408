"""A real, size-limited filesystem for "the cache disk is full" tests: a tmpfs mounted for one test.

``small_filesystem(path, size)`` mounts a tmpfs of ``size`` bytes at ``path`` and unmounts it on exit. Mounting
needs root (CAP_SYS_ADMIN): an unprivileged run skips with that reason; a root run where mounting fails is a
failure, not a skip, so a broken environment cannot hide the tests. ``leave_free`` fills the filesystem with a
ballast file until only the given number of bytes are free.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

MIB: Final = 1024 * 1024
BALLAST: Final = "ballast.bin"
_CHUNK: Final = MIB


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@contextlib.contextmanager
def small_filesystem(path: Path, size: int) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes at ``path`` (created) for the duration of the block."""
    if os.geteuid() != 0:
        pytest.skip(f"mounting a size-limited tmpfs needs root; these tests run as uid {os.geteuid()}")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True, text=True, check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(f"running as root but cannot mount a tmpfs at {path}: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        unmounted = subprocess.run(["umount", str(path)], capture_output=True, text=True, check=False)
        if unmounted.returncode != 0:
            # Something still holds a file open (a failing test's leftovers): detach it rather than leak it.
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def leave_free(fs: Path, free: int) -> int:
    """Grow the ballast file on ``fs`` until at most ``free`` bytes are free; return what is free then."""
    missing = free_bytes(fs) - free
    if missing > 0:
        with open(fs / BALLAST, "ab") as fh:
            block = b"\0" * _CHUNK
            while missing > 0:
                fh.write(block[: min(missing, _CHUNK)])
                missing -= _CHUNK
    return free_bytes(fs)


def drop_ballast(fs: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (fs / BALLAST).unlink()
