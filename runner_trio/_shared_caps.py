"""Per-tenant and per-extension concurrency caps counted across the worker processes of one runner.

A runner of several workers (``_workers.py``) must not let each worker run ``RUNNER_MAX_CONCURRENCY_PER_*``
invocations of one tenant: the caps are the runner's. A cap of N for one key is N lock files
``<caps>/<digest>.<i>.lock`` in the runner instance's run directory, and a slot is an exclusive ``flock`` on
one of them taken without blocking. The kernel holds the count: a slot is given back when its file
descriptor closes, including when a worker is killed, so a crashed worker never leaks a slot.

There is no "wait for any of these N locks" in the kernel: an invocation that finds every file taken polls,
backing off from :data:`POLL_MIN_S` to :data:`POLL_MAX_S`, until a slot frees or it gives up (``Overloaded``,
as a full in-process queue does). A slot given back in the same worker wakes that worker's waiters at once.
Waiters in different workers are therefore not served strictly first in, first out; within one worker the
in-process limiters of ``_admission.py`` still queue in order first.
The global cap (``RUNNER_MAX_CONCURRENCY``) stays per worker: it bounds the guest threads of one process.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final, final

import trio

from ._errors import Overloaded

__all__ = ["POLL_MAX_S", "POLL_MIN_S", "SharedCaps"]

POLL_MIN_S: Final = 0.002
POLL_MAX_S: Final = 0.01


@final
class SharedCaps:
    """Runner-wide slots per tenant and per extension: ``async with caps.hold(tenant, extension, ...)``.

    Args:
        directory: shared by every worker of the runner (created if missing).
        max_per_tenant: invocations of one tenant running at once in the whole runner.
        max_per_extension: invocations of one (tenant, extension) running at once in the whole runner.
    """

    def __init__(self, directory: Path, *, max_per_tenant: int, max_per_extension: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._dir = directory
        self._per_tenant = max_per_tenant
        self._per_extension = max_per_extension
        # key -> set when a slot of that key is given back in this process (then replaced by a fresh event).
        self._released: dict[tuple[str, ...], trio.Event] = {}

    @asynccontextmanager
    async def hold(self, tenant: str, extension: str, *, give_up: float, reason: str) -> AsyncIterator[None]:
        """Hold a tenant slot and then an extension slot (always in this order) for the block.

        Raises:
            Overloaded: with ``reason``, when no slot came free before ``give_up`` (``trio.current_time()``).
        """
        held: list[tuple[tuple[str, ...], int]] = []
        wanted: tuple[tuple[tuple[str, ...], int], ...] = (
            (("tenant", tenant), self._per_tenant),
            (("extension", tenant, extension), self._per_extension),
        )
        try:
            for key, size in wanted:
                held.append((key, await self._take(key, size, give_up, reason)))
            yield
        finally:
            for slot_key, fd in held:
                os.close(fd)  # releases the flock
                event = self._released.pop(slot_key, None)
                if event is not None:
                    event.set()

    def try_take(self, key: tuple[str, ...], size: int) -> int | None:
        """One free slot of ``key`` (its locked file descriptor: close it to give the slot back), or None."""
        stem = hashlib.sha256("\0".join(key).encode()).hexdigest()[:32]
        for i in range(size):
            fd = os.open(self._dir / f"{stem}.{i}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            return fd
        return None

    async def _take(self, key: tuple[str, ...], size: int, give_up: float, reason: str) -> int:
        delay = POLL_MIN_S
        while True:
            fd = self.try_take(key, size)
            if fd is not None:
                return fd
            left = give_up - trio.current_time()
            if left <= 0:
                raise Overloaded(reason)
            released = self._released.get(key)
            if released is None:
                released = self._released[key] = trio.Event()
            with trio.move_on_after(min(delay, left)):
                await released.wait()
            delay = min(delay * 2, POLL_MAX_S)
