"""Admission control: how many invocations run at once, globally and per tenant and extension.

Every invocation takes three slots in a fixed order (tenant, extension, global) so no two invocations can
wait on each other in a cycle, and a tenant that floods the runner queues behind its own cap instead of
holding global slots while it waits. Waiting is bounded twice: by the number of waiters (``max_queue``) and by
time (``queue_timeout``, cut short by the caller's own deadline when that comes first); past either the
invocation is refused as ``Overloaded`` (status 429). A slot is for running a guest only: loading its bundle
happens before (see ``_execute``), so a compile never holds a slot that others queue behind.

A fourth, weighted cap bounds memory: each invocation reserves its memory cap (``memory_mb``) from
``memory_budget_mb`` after its global slot, so the guests running at once can never together be allowed more
memory than the budget. An invocation that would exceed it waits in the same queue, under the same bounds.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Final, TypeVar, final

import trio

from ._errors import Overloaded
from ._shared_caps import SharedCaps

__all__ = ["Admission", "AdmissionStatistics", "MemoryBudget"]

K = TypeVar("K")

DEFAULT_MAX_CONCURRENCY: Final = 8
DEFAULT_MAX_PER_TENANT: Final = 4
DEFAULT_MAX_PER_EXTENSION: Final = 4
DEFAULT_MAX_QUEUE: Final = 64
DEFAULT_QUEUE_TIMEOUT: Final = 2.0
DEFAULT_MEMORY_BUDGET_MB: Final = 2048


@final
class MemoryBudget:
    """A weighted semaphore of megabytes: ``acquire(n)`` waits until ``n`` more fit under ``total``."""

    def __init__(self, total: int) -> None:
        if total <= 0:
            raise ValueError("the memory budget must be positive")
        self.total = total
        self.used = 0
        self._lot = trio.lowlevel.ParkingLot()

    def fits(self, amount: int) -> bool:
        return self.used + amount <= self.total

    def acquire_nowait(self, amount: int) -> None:
        """Take ``amount`` now. Raises ``trio.WouldBlock`` when it does not fit."""
        if not self.fits(amount):
            raise trio.WouldBlock
        self.used += amount

    async def acquire(self, amount: int) -> None:
        if amount > self.total:
            raise ValueError(f"{amount} MB can never fit a budget of {self.total} MB")
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self.fits(amount):
            await self._lot.park()
        self.used += amount

    def release(self, amount: int) -> None:
        self.used -= amount
        self._lot.unpark_all()  # every waiter checks again; the ones that now fit go on


@dataclass(frozen=True)
class AdmissionStatistics:
    running: int
    waiting: int
    tenants: int
    extensions: int
    memory_mb: int = 0
    """Sum of the memory caps of the invocations running now."""


@final
class Admission:
    """Concurrency caps with a bounded queue. Use ``async with admission.slot(tenant, extension):``."""

    def __init__(
        self,
        *,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_per_tenant: int = DEFAULT_MAX_PER_TENANT,
        max_per_extension: int = DEFAULT_MAX_PER_EXTENSION,
        max_queue: int = DEFAULT_MAX_QUEUE,
        queue_timeout: float = DEFAULT_QUEUE_TIMEOUT,
        memory_budget_mb: int = DEFAULT_MEMORY_BUDGET_MB,
        shared: SharedCaps | None = None,
    ) -> None:
        # ``shared``: the runner-wide tenant and extension caps of a multi-worker runner, taken after this
        # process's own tenant and extension slots and before the global one (the same fixed order).
        self._shared = shared
        self._global = trio.CapacityLimiter(max_concurrency)
        self._memory = MemoryBudget(memory_budget_mb)
        self._per_tenant = max_per_tenant
        self._per_extension = max_per_extension
        self._max_queue = max_queue
        self._queue_timeout = queue_timeout
        # Limiters are made per key on demand and dropped when no task in slot() uses them any more, so the
        # maps stay as small as the live load. The count is of tasks inside slot(), waiting or running.
        self._tenants: dict[str, tuple[trio.CapacityLimiter, int]] = {}
        self._extensions: dict[tuple[str, str], tuple[trio.CapacityLimiter, int]] = {}
        self._waiting = 0
        self._running = 0

    def statistics(self) -> AdmissionStatistics:
        return AdmissionStatistics(
            self._running, self._waiting, len(self._tenants), len(self._extensions), self._memory.used
        )

    @asynccontextmanager
    async def slot(
        self, tenant: str, extension: str, *, deadline: float = math.inf, memory_mb: int = 0
    ) -> AsyncIterator[None]:
        """Hold one slot of each cap, and ``memory_mb`` of the memory budget, for the duration of the block.

        Args:
            deadline: the caller's own deadline (``trio.current_time()`` clock): waiting ends there when it comes
                before the queue timeout, since a slot granted after it could run nothing.
            memory_mb: the invocation's memory cap, reserved from the budget.

        Raises:
            Overloaded: the queue is full, or no slot came free within the queue timeout or before ``deadline``.
        """
        ext_key = (tenant, extension)
        tenant_limiter = _take(self._tenants, tenant, self._per_tenant)
        ext_limiter = _take(self._extensions, ext_key, self._per_extension)
        limiters = (tenant_limiter, ext_limiter, self._global)
        try:
            must_wait = any(limiter.available_tokens == 0 for limiter in limiters) or not self._memory.fits(memory_mb)
            if must_wait and self._waiting >= self._max_queue:
                raise Overloaded("queue full")
            async with AsyncExitStack() as stack:
                queue_deadline = trio.current_time() + self._queue_timeout
                give_up = min(queue_deadline, deadline)
                reason = "no capacity within the queue timeout"
                if give_up < queue_deadline:
                    reason = "no capacity before the request's deadline"
                self._waiting += 1
                try:
                    for limiter in limiters:
                        if limiter is self._global and self._shared is not None:
                            await stack.enter_async_context(
                                self._shared.hold(tenant, extension, give_up=give_up, reason=reason)
                            )
                        try:
                            limiter.acquire_nowait()
                        except trio.WouldBlock:
                            with trio.move_on_at(give_up) as waited:
                                await limiter.acquire()
                            if waited.cancelled_caught:
                                raise Overloaded(reason) from None
                        stack.callback(limiter.release)
                    if memory_mb:
                        try:
                            self._memory.acquire_nowait(memory_mb)
                        except trio.WouldBlock:
                            with trio.move_on_at(give_up) as waited:
                                await self._memory.acquire(memory_mb)
                            if waited.cancelled_caught:
                                raise Overloaded(f"{reason} (memory budget)") from None
                        stack.callback(self._memory.release, memory_mb)
                finally:
                    self._waiting -= 1
                self._running += 1
                try:
                    yield
                finally:
                    self._running -= 1
        finally:
            _release(self._extensions, ext_key)
            _release(self._tenants, tenant)


def _take(table: dict[K, tuple[trio.CapacityLimiter, int]], key: K, size: int) -> trio.CapacityLimiter:
    limiter, users = table.get(key) or (trio.CapacityLimiter(size), 0)
    table[key] = (limiter, users + 1)
    return limiter


def _release(table: dict[K, tuple[trio.CapacityLimiter, int]], key: K) -> None:
    limiter, users = table[key]
    if users <= 1:
        del table[key]
    else:
        table[key] = (limiter, users - 1)
