"""The worker threads guests run on: few at once while guests are short, more as soon as one runs long.

Guests run in worker threads (``trio.to_thread``), and wasmtime-py's C calls hand the GIL back and forth
with every other thread of the process: the event loop's (HTTP, JSON) and the other guests'. With short guests
(a fraction of a millisecond), two or more guest threads of one process at once mostly wait for the GIL and
the kernel; one at a time per worker process serves more and with a shorter tail (docs/benchmarks.md). But a
fixed limit of one would let one slow guest (asleep in WASI, waiting for a fetch, or spinning until its
deadline) hold up every other tenant's guests of that process.

So :class:`GuestThreads` starts ``eager`` guests at once and each further one only when a running guest has been
running for ``stall_s`` (one more per such guest), never more than ``total``. Short guests therefore run one
after the other; a guest that runs long lets the next one start after ``stall_s``; slow guests together can
still use ``total`` threads, as before. Waiters start in arrival order.

It is the ``limiter`` of ``trio.to_thread.run_sync`` (an object with ``acquire_on_behalf_of`` and
``release_on_behalf_of``; ``acquire_on_behalf_of_nowait`` lets ``engine.invoke`` skip a schedule point).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Final, final

import trio

__all__ = ["DEFAULT_STALL_S", "GuestThreads"]

DEFAULT_STALL_S: Final = 0.002


@final
class GuestThreads:
    """Guest thread slots: ``eager`` start at once, one more per guest running for ``stall_s``, at most ``total``.

    Args:
        total: threads running guests at once, at most.
        eager: threads started without waiting for a running guest to stall (1 to ``total``).
        stall_s: how long a guest runs before it lets one more guest start.
    """

    def __init__(self, total: int, *, eager: int, stall_s: float = DEFAULT_STALL_S) -> None:
        if total < 1 or not 1 <= eager <= total or stall_s < 0:
            raise ValueError("need 1 <= eager <= total and stall_s >= 0")
        self.total_tokens = total
        self.eager = eager
        self.stall_s = stall_s
        self._running: dict[object, float] = {}  # borrower -> when its guest started (trio clock)
        self._queue: deque[object] = deque()  # waiting borrowers, first come first
        self._changed = trio.Event()

    @property
    def borrowed_tokens(self) -> int:
        return len(self._running)

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def acquire_on_behalf_of_nowait(self, borrower: object) -> None:
        """Start at once, or raise ``trio.WouldBlock`` (also when others wait: they go first)."""
        now = trio.current_time()
        if self._queue or not self._admissible(now):
            raise trio.WouldBlock
        self._running[borrower] = now

    async def acquire_on_behalf_of(self, borrower: object) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self.acquire_on_behalf_of_nowait(borrower)
        except trio.WouldBlock:
            pass
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        self._queue.append(borrower)
        try:
            while True:
                first = self._queue[0] is borrower
                if first and self._admissible(trio.current_time()):
                    break
                changed = self._changed
                with trio.move_on_at(self._next_stall() if first else math.inf):
                    await changed.wait()
        finally:
            self._queue.remove(borrower)
            self._notify()  # the next in line looks again
        self._running[borrower] = trio.current_time()

    def release_on_behalf_of(self, borrower: object) -> None:
        del self._running[borrower]
        if self._queue:
            self._notify()

    def _admissible(self, now: float) -> bool:
        running = len(self._running)
        if running < self.eager:
            return True
        if running >= self.total_tokens:
            return False
        stalled = sum(1 for started in self._running.values() if now - started >= self.stall_s)
        return running < self.eager + stalled

    def _next_stall(self) -> float:
        """When the next running guest that has not stalled yet will have (``inf`` when none is running)."""
        now = trio.current_time()
        upcoming = [started + self.stall_s for started in self._running.values() if now - started < self.stall_s]
        return min(upcoming, default=math.inf)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
