"""Per-tenant and per-extension concurrency caps counted across the worker processes of one runner.

A runner of several workers (``_workers.py``) must not let each worker run ``RUNNER_MAX_CONCURRENCY_PER_*``
invocations of one tenant: the caps are the runner's. A cap of N for one key is N lock files
``<caps>/<digest>.<i>.lock`` in the runner instance's run directory, and a slot is an exclusive ``flock`` on
one of them taken without blocking. The kernel holds the count: a slot is given back when it is unlocked or its
file descriptor closes, including when a worker is killed, so a crashed worker never leaks a slot.

Each worker keeps the files of its recent keys open (at most :data:`MAX_OPEN_SLOT_FILES`, least recently used
closed first when idle) and knows which of their slots it holds itself: taking a slot is one ``flock`` and giving
it back another, where opening and closing the file cost two more system calls per slot on every invocation
(each one a point where the event loop's thread lets go of the GIL to the guests' threads).

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
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final, final

import trio

from ._errors import Overloaded

__all__ = ["MAX_OPEN_SLOT_FILES", "POLL_MAX_S", "POLL_MIN_S", "SharedCaps"]

POLL_MIN_S: Final = 0.002
POLL_MAX_S: Final = 0.01
MAX_OPEN_SLOT_FILES: Final = 256
"""Slot files a worker keeps open for reuse (beyond them, idle ones are closed, least recently used first)."""


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
        # (key, slot) -> its open file, most recently used last; and the slots this process holds (locked).
        self._files: OrderedDict[tuple[tuple[str, ...], int], int] = OrderedDict()
        self._held: set[tuple[tuple[str, ...], int]] = set()
        self._stems: dict[tuple[str, ...], str] = {}

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
            for slot_key, slot in reversed(held):
                self._give_back_and_wake(slot_key, slot)

    def try_hold(self, tenant: str, extension: str) -> tuple[int, int] | None:
        """What :meth:`hold` takes, without waiting: ``(tenant slot, extension slot)`` for
        :meth:`give_back_held`, or None when either cap is full (nothing is held then)."""
        tenant_key, ext_key = ("tenant", tenant), ("extension", tenant, extension)
        tenant_slot = self.try_take(tenant_key, self._per_tenant)
        if tenant_slot is None:
            return None
        ext_slot = self.try_take(ext_key, self._per_extension)
        if ext_slot is None:
            self._give_back_and_wake(tenant_key, tenant_slot)
            return None
        return tenant_slot, ext_slot

    def give_back_held(self, tenant: str, extension: str, held: tuple[int, int]) -> None:
        """Give back what :meth:`try_hold` took (extension first, then tenant, as :meth:`hold` does)."""
        tenant_slot, ext_slot = held
        self._give_back_and_wake(("extension", tenant, extension), ext_slot)
        self._give_back_and_wake(("tenant", tenant), tenant_slot)

    def _give_back_and_wake(self, key: tuple[str, ...], slot: int) -> None:
        self.give_back(key, slot)
        event = self._released.pop(key, None)
        if event is not None:
            event.set()

    def try_take(self, key: tuple[str, ...], size: int) -> int | None:
        """One free slot of ``key`` (its index: :meth:`give_back` it), or None when all ``size`` are taken."""
        for i in range(size):
            slot = (key, i)
            if slot in self._held:
                continue  # ours: a second flock on our own file would succeed, not exclude
            fd = self._file(slot)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            self._held.add(slot)
            return i
        return None

    def give_back(self, key: tuple[str, ...], slot: int) -> None:
        """Unlock slot ``slot`` of ``key`` (taken by :meth:`try_take`); its file stays open for the next take."""
        held = (key, slot)
        self._held.discard(held)
        fd = self._files.get(held)
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        self._trim()

    def _file(self, slot: tuple[tuple[str, ...], int]) -> int:
        fd = self._files.get(slot)
        if fd is not None:
            self._files.move_to_end(slot)
            return fd
        key, i = slot
        stem = self._stems.get(key)
        if stem is None:
            if len(self._stems) >= MAX_OPEN_SLOT_FILES:
                self._stems.clear()
            stem = self._stems[key] = hashlib.sha256("\0".join(key).encode()).hexdigest()[:32]
        fd = self._files[slot] = os.open(self._dir / f"{stem}.{i}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                                         0o600)
        return fd

    def _trim(self) -> None:
        """Close the least recently used idle files beyond :data:`MAX_OPEN_SLOT_FILES` (never a held slot's)."""
        if len(self._files) <= MAX_OPEN_SLOT_FILES:
            return
        for slot in list(self._files):
            if len(self._files) <= MAX_OPEN_SLOT_FILES:
                break
            if slot not in self._held:
                os.close(self._files.pop(slot))

    def close(self) -> None:
        """Close every slot file (giving back any slot still held)."""
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()
        self._held.clear()

    async def _take(self, key: tuple[str, ...], size: int, give_up: float, reason: str) -> int:
        delay = POLL_MIN_S
        while True:
            slot = self.try_take(key, size)
            if slot is not None:
                return slot
            left = give_up - trio.current_time()
            if left <= 0:
                raise Overloaded(reason)
            released = self._released.get(key)
            if released is None:
                released = self._released[key] = trio.Event()
            with trio.move_on_after(min(delay, left)):
                await released.wait()
            delay = min(delay * 2, POLL_MAX_S)
