"""Locks between the processes that share a cache root (a runner's worker processes, several runners on one
machine): one fetch and one compile per content hash per machine, and index.json rewrites that never lose
another process's change.

A lock is an exclusive ``flock`` on ``<root>/.locks/<hex>.<purpose>.lock``. The kernel releases it when its
file descriptor closes, so a killed process never leaves a lock held. Waiting never blocks the trio thread:
the lock is tried without blocking and retried after a short sleep that backs off from :data:`POLL_MIN_S` to
:data:`POLL_MAX_S` (cancellable like any sleep); a lock guards work that takes milliseconds (an index rewrite)
to seconds (a fetch, a compile), so the polling costs little. Within one process the same lock also excludes
other tasks (each acquisition opens its own file description), though the cache's single flights already let
one task per key ask. The lock files are empty and stay (one or two per hash): removing a lock file safely
would need a second lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import trio

LOCKS_DIR: Final = ".locks"
POLL_MIN_S: Final = 0.002
POLL_MAX_S: Final = 0.05


@asynccontextmanager
async def process_lock(path: Path) -> AsyncIterator[None]:
    """Hold the exclusive lock on ``path`` (created if missing) for the block."""
    fd = await trio.to_thread.run_sync(os.open, path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        delay = POLL_MIN_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await trio.sleep(delay)
                delay = min(delay * 2, POLL_MAX_S)
        yield
    finally:
        os.close(fd)  # releases the lock
