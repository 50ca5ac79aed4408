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

The global slots and the memory budget are handed out by one :class:`FairGate`, in weighted fair order between
tenants (start-time fair queueing): each waiter is tagged with a virtual start time, ``max(now, its tenant's
previous tag + 1 / weight)``, and the waiter with the smallest tag whose memory fits goes first. A tenant that
queues a burst of a hundred invocations tags them one after another, so another tenant's single waiter, tagged
at the current virtual time, goes before all but the burst's first; a tenant of weight 2 gets twice the slots
of one of weight 1 while both wait. ``discipline="fifo"`` tags by arrival instead (first come, first served:
the behaviour before the fair queue, kept for comparison, see ``scripts/bench fairness``). The per-tenant and
per-extension caps are taken before the gate, so a tenant never has more waiters at the gate than its cap.
A full queue is shared fairly too: under the fair queue a newcomer whose tenant has at least two waiters fewer
than the tenant with the most takes that tenant's newest place (which is refused as ``queue full``), so a
burst that fills the queue cannot keep other tenants out of it.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Final, TypeVar, final

import trio

from ._errors import Overloaded
from ._shared_caps import SharedCaps

__all__ = [
    "DEFAULT_QUEUE_DISCIPLINE",
    "QUEUE_DISCIPLINES",
    "Admission",
    "AdmissionStatistics",
    "FairGate",
    "MemoryBudget",
]

K = TypeVar("K")

DEFAULT_MAX_CONCURRENCY: Final = 8
DEFAULT_MAX_PER_TENANT: Final = 4
DEFAULT_MAX_PER_EXTENSION: Final = 4
DEFAULT_MAX_QUEUE: Final = 64
DEFAULT_QUEUE_TIMEOUT: Final = 2.0
DEFAULT_MEMORY_BUDGET_MB: Final = 2048
QUEUE_DISCIPLINES: Final = ("fair", "fifo")
DEFAULT_QUEUE_DISCIPLINE: Final = "fair"
DEFAULT_TENANT_WEIGHT: Final = 1


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


@final
class _Waiter:
    __slots__ = ("event", "granted", "memory_mb", "seq", "tag", "tenant")

    def __init__(self, tenant: str, memory_mb: int, tag: float, seq: int) -> None:
        self.tenant = tenant
        self.memory_mb = memory_mb
        self.tag = tag
        self.seq = seq
        self.granted = False
        self.event = trio.Event()


@final
class FairGate:
    """Global slots plus a memory budget, granted to waiters in weighted fair order between tenants.

    Args:
        slots: invocations running at once.
        memory_budget_mb: the sum of the memory caps of the invocations running at once.
        discipline: ``fair`` (start-time fair queueing between tenants) or ``fifo`` (arrival order).
        weights: tenant -> weight (a positive integer; tenants not named have :data:`DEFAULT_TENANT_WEIGHT`).

    Waiters of one tenant are always served in their order of arrival; between tenants the smallest virtual
    start tag goes first, skipping a waiter whose memory does not fit (as the plain budget did). The scan is
    over the heads of the tenants that wait, so a grant costs O(waiting tenants), bounded by the queue size.
    """

    def __init__(
        self,
        slots: int,
        memory_budget_mb: int,
        *,
        discipline: str = DEFAULT_QUEUE_DISCIPLINE,
        weights: Mapping[str, int] | None = None,
    ) -> None:
        if slots <= 0:
            raise ValueError("the gate needs at least one slot")
        if discipline not in QUEUE_DISCIPLINES:
            raise ValueError(f"discipline must be one of {', '.join(QUEUE_DISCIPLINES)}, not {discipline!r}")
        chosen = dict(weights or {})
        if any(isinstance(w, bool) or not isinstance(w, int) or w <= 0 for w in chosen.values()):
            raise ValueError("tenant weights must be positive integers")
        self.slots = slots
        self.running = 0
        self.memory = MemoryBudget(memory_budget_mb)
        self.discipline = discipline
        self._fair = discipline == "fair"
        self._weights = chosen
        self._queues: dict[str, deque[_Waiter]] = {}
        self._vtime = 0.0
        self._seq = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def would_wait(self, memory_mb: int) -> bool:
        """Whether an invocation arriving now would have to queue."""
        return bool(self._queues) or self.running >= self.slots or not self.memory.fits(memory_mb)

    async def acquire(self, tenant: str, memory_mb: int, *, give_up: float) -> bool:
        """Take a slot and ``memory_mb`` of the budget; False when none came before ``give_up``.

        Raises:
            ValueError: ``memory_mb`` can never fit the budget.
        """
        if memory_mb > self.memory.total:
            raise ValueError(f"{memory_mb} MB can never fit a budget of {self.memory.total} MB")
        await trio.lowlevel.checkpoint_if_cancelled()
        if not self.would_wait(memory_mb):
            self.take_now(memory_mb)
            return True
        waiter = self._enqueue(tenant, memory_mb)
        self._dispatch()
        if not waiter.granted:
            try:
                with trio.move_on_at(give_up):
                    await waiter.event.wait()
            except BaseException:
                self._abandon(waiter)
                raise
            if not waiter.granted:
                self._abandon(waiter)
                return False
        return True

    def release(self, memory_mb: int) -> None:
        self.running -= 1
        self.memory.release(memory_mb)
        self._dispatch()

    def take_now(self, memory_mb: int) -> None:
        """Take a slot and ``memory_mb`` at once; only when :meth:`would_wait` just said no."""
        self.running += 1
        self.memory.used += memory_mb

    def _enqueue(self, tenant: str, memory_mb: int) -> _Waiter:
        seq = next(self._seq)
        queue = self._queues.get(tenant)
        if not self._fair:
            tag = float(seq)
        else:
            # Start-time fair queueing: a tenant's next waiter starts where its previous one finishes (one slot
            # costs 1 / weight of virtual time), never before the virtual time now (no credit for idling).
            previous = queue[-1].tag + 1 / self._weights.get(tenant, DEFAULT_TENANT_WEIGHT) if queue else 0.0
            tag = max(self._vtime, previous)
        waiter = _Waiter(tenant, memory_mb, tag, seq)
        if queue is None:
            self._queues[tenant] = deque((waiter,))
        else:
            queue.append(waiter)
        return waiter

    def _dispatch(self) -> None:
        while self._queues and self.running < self.slots:
            best: _Waiter | None = None
            for queue in self._queues.values():
                head = queue[0]
                if self.memory.fits(head.memory_mb) and (
                    best is None or (head.tag, head.seq) < (best.tag, best.seq)
                ):
                    best = head
            if best is None:
                return
            queue = self._queues[best.tenant]
            queue.popleft()
            if not queue:
                del self._queues[best.tenant]
            self.take_now(best.memory_mb)
            if self._fair:
                self._vtime = max(self._vtime, best.tag)
            best.granted = True
            best.event.set()

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiter gives up (timeout, cancellation): out of the queue, or its slot back if it got one."""
        if waiter.granted:
            self.release(waiter.memory_mb)
            return
        queue = self._queues.get(waiter.tenant)
        if queue is not None and waiter in queue:  # a waiter not granted is in its queue
            queue.remove(waiter)
            if not queue:
                del self._queues[waiter.tenant]
        self._dispatch()


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
        discipline: str = DEFAULT_QUEUE_DISCIPLINE,
        weights: Mapping[str, int] | None = None,
    ) -> None:
        # ``shared``: the runner-wide tenant and extension caps of a multi-worker runner, taken after this
        # process's own tenant and extension slots and before the global one (the same fixed order).
        # ``discipline`` and ``weights``: how the global slots are handed out between tenants (FairGate).
        self._shared = shared
        self._gate = FairGate(max_concurrency, memory_budget_mb, discipline=discipline, weights=weights)
        self._per_tenant = max_per_tenant
        self._per_extension = max_per_extension
        self._max_queue = max_queue
        self._queue_timeout = queue_timeout
        # Caps are made per key on demand and dropped when no task in slot() uses them any more, so the
        # maps stay as small as the live load. The count is of tasks inside slot(), waiting or running.
        self._tenants: dict[str, _KeyCap] = {}
        self._extensions: dict[tuple[str, str], _KeyCap] = {}
        self._waiting = 0
        self._running = 0
        # Tenant -> its invocations waiting in slot(), oldest first (for the fair queue's longest queue drop).
        self._queued: dict[str, deque[_Place]] = {}

    def statistics(self) -> AdmissionStatistics:
        return AdmissionStatistics(
            self._running, self._waiting, len(self._tenants), len(self._extensions), self._gate.memory.used
        )

    @property
    def discipline(self) -> str:
        """``fair`` or ``fifo``: how waiting invocations of different tenants are ordered."""
        return self._gate.discipline

    def slot(
        self, tenant: str, extension: str, *, deadline: float = math.inf, memory_mb: int = 0
    ) -> AbstractAsyncContextManager[None]:
        """Hold one slot of each cap, and ``memory_mb`` of the memory budget, for the duration of the block.

        Args:
            deadline: the caller's own deadline (``trio.current_time()`` clock): waiting ends there when it comes
                before the queue timeout, since a slot granted after it could run nothing.
            memory_mb: the invocation's memory cap, reserved from the budget.

        Raises:
            Overloaded: the queue is full, or no slot came free within the queue timeout or before ``deadline``.
        """
        return _Slot(self, tenant, extension, deadline, memory_mb)

    def _take_now(self, tenant: str, extension: str, memory_mb: int) -> tuple[int, int] | None:
        """Every cap at once when none has to be waited for (nobody queues, each has room): the common case of a
        runner that is not saturated, taken without a coroutine, a cancel scope or a queue place.

        Returns the runner-wide slots taken (:meth:`SharedCaps.try_hold`; ``_NO_SHARED`` without shared caps) for
        :meth:`_give_back_now`, or None when something must be waited for (nothing is held then).
        """
        if self._waiting:
            return None
        tenant_cap = self._tenants.get(tenant)
        ext_cap = self._extensions.get((tenant, extension))
        if (tenant_cap is not None and tenant_cap.held >= self._per_tenant) or (
            ext_cap is not None and ext_cap.held >= self._per_extension
        ) or self._gate.would_wait(memory_mb):
            return None
        held = _NO_SHARED
        if self._shared is not None:
            taken = self._shared.try_hold(tenant, extension)
            if taken is None:
                return None
            held = taken
        _take(self._tenants, tenant).held += 1
        _take(self._extensions, (tenant, extension)).held += 1
        self._gate.take_now(memory_mb)
        self._running += 1
        return held

    def _give_back_now(self, tenant: str, extension: str, memory_mb: int, held: tuple[int, int]) -> None:
        """Give back what :meth:`_take_now` took, in the reverse order."""
        self._running -= 1
        self._gate.release(memory_mb)
        if self._shared is not None and held is not _NO_SHARED:
            self._shared.give_back_held(tenant, extension, held)
        ext_key = (tenant, extension)
        self._extensions[ext_key].release()
        _release(self._extensions, ext_key)
        self._tenants[tenant].release()
        _release(self._tenants, tenant)

    @asynccontextmanager
    async def _queued_slot(
        self, tenant: str, extension: str, *, deadline: float = math.inf, memory_mb: int = 0
    ) -> AsyncIterator[None]:
        """:meth:`slot` when some cap has to be waited for (or others already wait): the queue, in fair order."""
        ext_key = (tenant, extension)
        tenant_cap = _take(self._tenants, tenant)
        ext_cap = _take(self._extensions, ext_key)
        caps = ((tenant_cap, self._per_tenant), (ext_cap, self._per_extension))
        gate = self._gate
        try:
            must_wait = any(not cap.has_room(size) for cap, size in caps) or gate.would_wait(memory_mb)
            if must_wait and self._waiting >= self._max_queue:
                self._make_room(tenant)
            async with AsyncExitStack() as stack:
                queue_deadline = trio.current_time() + self._queue_timeout
                give_up = min(queue_deadline, deadline)
                reason = "no capacity within the queue timeout"
                if give_up < queue_deadline:
                    reason = "no capacity before the request's deadline"
                self._waiting += 1
                place = _Place()
                queued = self._queued.setdefault(tenant, deque())
                queued.append(place)
                try:
                    with place.scope:
                        await self._acquire(stack, tenant, extension, caps, memory_mb, give_up, reason)
                    if place.pushed_out:
                        raise Overloaded("queue full (its place was given to a tenant with fewer waiters)")
                finally:
                    self._waiting -= 1
                    if not place.pushed_out:
                        queued.remove(place)
                    if not queued and self._queued.get(tenant) is queued:
                        del self._queued[tenant]
                self._running += 1
                try:
                    yield
                finally:
                    self._running -= 1
        finally:
            _release(self._extensions, ext_key)
            _release(self._tenants, tenant)

    def _make_room(self, tenant: str) -> None:
        """The queue is full: refuse ``tenant``, or (fair queue) push out the newest waiter of the tenant with
        the most waiters when it has at least two more than ``tenant`` (longest queue drop), so that a burst that
        fills the queue cannot keep another tenant out of it.

        Raises:
            Overloaded: ``tenant`` already has as many waiters as any, or the queue is first come, first served.
        """
        if self._gate.discipline == "fair" and self._queued:
            mine = len(self._queued.get(tenant, ()))
            longest = max(self._queued.values(), key=len)
            if len(longest) >= mine + 2:
                place = longest.pop()
                place.pushed_out = True
                place.scope.cancel()
                return
        raise Overloaded("queue full")

    async def _acquire(
        self,
        stack: AsyncExitStack,
        tenant: str,
        extension: str,
        caps: tuple[tuple[_KeyCap, int], tuple[_KeyCap, int]],
        memory_mb: int,
        give_up: float,
        reason: str,
    ) -> None:
        """Take the tenant's and the extension's slots, the shared caps, then the gate (in this order)."""
        gate = self._gate
        for cap, size in caps:
            if not await cap.acquire(size, give_up):
                raise Overloaded(reason)
            stack.callback(cap.release)
        if self._shared is not None:
            await stack.enter_async_context(self._shared.hold(tenant, extension, give_up=give_up, reason=reason))
        # The global slot and the memory reservation, in fair order between tenants.
        if not await gate.acquire(tenant, memory_mb, give_up=give_up):
            if gate.running < gate.slots:
                reason = f"{reason} (memory budget)"
            raise Overloaded(reason)
        stack.callback(gate.release, memory_mb)


@final
class _Place:
    """One invocation's place in the queue: a cancel scope the fair queue may cancel to give it away."""

    __slots__ = ("pushed_out", "scope")

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.pushed_out = False


_NO_SHARED: Final = (-1, -1)
"""What :meth:`Admission._take_now` returns when the runner has no shared caps (one worker process)."""


@final
class _Slot:
    """``async with admission.slot(...)``: every cap taken at once when none must be waited for, else the queue."""

    __slots__ = ("_admission", "_deadline", "_extension", "_held", "_memory_mb", "_queued", "_tenant")

    def __init__(self, admission: Admission, tenant: str, extension: str, deadline: float, memory_mb: int) -> None:
        self._admission = admission
        self._tenant = tenant
        self._extension = extension
        self._deadline = deadline
        self._memory_mb = memory_mb
        self._held: tuple[int, int] | None = None
        self._queued: AbstractAsyncContextManager[None] | None = None

    async def __aenter__(self) -> None:
        admission = self._admission
        self._held = admission._take_now(self._tenant, self._extension, self._memory_mb)
        if self._held is not None:
            return
        queued = admission._queued_slot(self._tenant, self._extension, deadline=self._deadline,
                                        memory_mb=self._memory_mb)
        await queued.__aenter__()
        self._queued = queued

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        if self._held is not None:
            self._admission._give_back_now(self._tenant, self._extension, self._memory_mb, self._held)
            return None
        assert self._queued is not None
        return await self._queued.__aexit__(exc_type, exc, tb)


@final
class _KeyCap:
    """One tenant's (or extension's) cap in this process: ``held`` slots taken, waiters parked first come,
    first served; a slot given back goes straight to the first waiter (no barging). ``users``: tasks inside
    :meth:`Admission.slot` for this key, waiting or running (the entry is dropped at zero)."""

    __slots__ = ("held", "lot", "users")

    def __init__(self) -> None:
        self.held = 0
        self.users = 0
        self.lot: trio.lowlevel.ParkingLot | None = None  # made on the first wait

    def has_room(self, size: int) -> bool:
        return self.held < size and not (self.lot is not None and len(self.lot))

    async def acquire(self, size: int, give_up: float) -> bool:
        """Take a slot, waiting until ``give_up`` at most; False when none came."""
        if self.has_room(size):
            self.held += 1
            return True
        if self.lot is None:
            self.lot = trio.lowlevel.ParkingLot()
        with trio.move_on_at(give_up):
            await self.lot.park()  # unparked by release(), which handed its slot over
            return True
        return False

    def release(self) -> None:
        if self.lot is not None and self.lot.unpark():
            return  # the slot went to the first waiter
        self.held -= 1


def _take(table: dict[K, _KeyCap], key: K) -> _KeyCap:
    cap = table.get(key)
    if cap is None:
        cap = table[key] = _KeyCap()
    cap.users += 1
    return cap


def _release(table: dict[K, _KeyCap], key: K) -> None:
    cap = table[key]
    cap.users -= 1
    if cap.users <= 0:
        del table[key]
