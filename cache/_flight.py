"""Single-flight: concurrent callers for one key share one run of the work.

The first caller (the leader) runs the work in its own task. Callers that arrive while it runs wait on a
`trio.Event`. When the work returns, every waiter gets the value; when it raises an `Exception`, every waiter
gets that same exception and the key is free again, so a later call retries. When the leader is cancelled (or
interrupted by any other `BaseException`), nothing was produced and nothing failed: the waiters loop, and one
of them becomes the next leader. A client disconnect therefore never poisons a fill shared with other clients.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar, final

import trio

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Flight(Generic[V]):
    __slots__ = ("done", "error", "finished", "has_value", "value", "waiters")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.waiters = 0
        self.finished = False
        self.has_value = False
        self.value: V | None = None
        self.error: Exception | None = None


@final
class SingleFlight(Generic[K, V]):
    """At most one run of the work per key at a time; results and errors are shared with the waiters.

    Args:
        share: called synchronously once per waiter when the leader's value is published, before any waiter
            wakes (the disk cache pins the entry for each waiter here, so nothing can evict it in between).
        unshare: called when a waiter that ``share`` was called for is cancelled before it took the value.
    """

    def __init__(
        self,
        *,
        share: Callable[[V], None] | None = None,
        unshare: Callable[[V], None] | None = None,
    ) -> None:
        self._flights: dict[K, _Flight[V]] = {}
        self._share = share
        self._unshare = unshare

    def in_flight(self, key: K) -> bool:
        return key in self._flights

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: K, work: Callable[[], Awaitable[V]]) -> tuple[V, bool]:
        """Run ``work`` for ``key`` unless a run is in flight; return ``(value, led)``.

        ``led`` is True for the caller whose task ran the work. Waiters get the leader's value or its error.
        """
        while True:
            flight = self._flights.get(key)
            if flight is None:
                return await self._lead(key, work), True
            flight.waiters += 1
            try:
                await flight.done.wait()
            except BaseException:
                # Either the flight finished after this waiter was counted (its share must be given back) or
                # it is still running and this waiter simply leaves.
                if flight.finished and flight.has_value:
                    if self._unshare is not None:
                        self._unshare(flight.value)  # type: ignore[arg-type]
                else:
                    flight.waiters -= 1
                raise
            if flight.error is not None:
                raise flight.error
            if flight.has_value:
                return flight.value, False  # type: ignore[return-value]
            # The leader was cancelled: try again, possibly as the new leader.

    async def _lead(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        flight: _Flight[V] = _Flight()
        self._flights[key] = flight
        try:
            value = await work()
        except Exception as exc:
            flight.error = exc
            raise
        else:
            flight.value = value
            flight.has_value = True
            if self._share is not None:
                for _ in range(flight.waiters):
                    self._share(value)
            return value
        finally:
            flight.finished = True
            del self._flights[key]
            flight.done.set()
