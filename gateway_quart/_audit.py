"""Audit rows of proxied calls: the row before the call, its final status later, off the response path.

The row itself is written before the call runs (the contract's order: a gateway that dies mid-call still
leaves the row), by :meth:`AuditWriter.record`. A call's final status (:meth:`AuditWriter.finish`) is only
queued: it rides along with the next row this gateway writes (same registry call, so a steady stream of calls
costs one registry write per call, not two), and :meth:`AuditWriter.run` (a task in the app's nursery) writes
what is still queued ``flush_interval_s`` after it was queued. Reading the audit log (:meth:`AuditWriter.flush`)
and stopping the app write what is queued and wait for the statuses riding along, so an answered call's status
is always visible to the admin API of the same process. A gateway killed in between leaves those rows without
a status, as it does for the calls it had in flight. With ``max_pending`` statuses queued (a slow database) or
without :meth:`run`, the caller writes the queue itself: backpressure, not an unbounded backlog.
"""

from __future__ import annotations

import logging
from typing import Final, final

import trio

from ._errors import RegistryError
from .registry import Registry

log = logging.getLogger("gateway_quart.audit")

DEFAULT_FLUSH_INTERVAL_S: Final = 0.5
DEFAULT_MAX_PENDING: Final = 256
DEFAULT_MAX_RIDE_ALONG: Final = 32
"""Queued statuses a row takes with it at most (each adds a statement to the write before the runner call)."""
DEFAULT_WRITE_TIMEOUT_S: Final = 5.0


@final
class AuditWriter:
    """Writes audit rows through ``registry`` (see the module docstring).

    Args:
        registry: where rows go.
        flush_interval_s: how long a queued status waits for a row to ride along with before :meth:`run`
            writes it.
        max_pending: queued statuses beyond which :meth:`finish` writes the queue itself.
        max_ride_along: queued statuses one row takes with it at most.
        write_timeout_s: how long writing the queue may take before it is given up (and logged).
    """

    def __init__(
        self,
        registry: Registry,
        *,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_ride_along: int = DEFAULT_MAX_RIDE_ALONG,
        write_timeout_s: float = DEFAULT_WRITE_TIMEOUT_S,
    ) -> None:
        self._registry = registry
        self._interval = flush_interval_s
        self._max_pending = max_pending
        self._max_ride_along = max_ride_along
        self._write_timeout_s = write_timeout_s
        self._pending: dict[int, int] = {}  # audit id -> final status, in the order they came
        self._queued = trio.Event()  # set when the queue went from empty to not: run() starts its wait
        self._lock = trio.Lock()  # one flush at a time
        self._riding = 0  # record() calls in flight that carry queued statuses
        self._landed = trio.Event()
        self._landed.set()
        self._running = False

    @property
    def pending(self) -> int:
        """Final statuses queued, not written yet."""
        return len(self._pending)

    async def record(
        self, *, tenant_id: str, user_id: str | None, extension_id: str, method: str, path: str, request_id: str
    ) -> int:
        """Write the row of a call about to be made (status still open) and return its id; queued statuses of
        earlier calls ride along.

        Raises:
            RegistryError: the row was not written (the statuses that rode along are queued again).
        """
        finished = self._take(self._max_ride_along)
        if not finished:
            return await self._registry.record_audit(tenant_id=tenant_id, user_id=user_id,
                                                     extension_id=extension_id, method=method, path=path,
                                                     request_id=request_id)
        self._riding += 1
        if self._landed.is_set():
            self._landed = trio.Event()
        try:
            return await self._registry.record_audit(tenant_id=tenant_id, user_id=user_id,
                                                     extension_id=extension_id, method=method, path=path,
                                                     request_id=request_id, finished=finished)
        except BaseException:
            # Written or not (a cancelled call may still have run): setting a status again is harmless.
            for audit_id, status in finished:
                self._pending.setdefault(audit_id, status)
            if not self._queued.is_set():
                self._queued.set()
            raise
        finally:
            self._riding -= 1
            if not self._riding:
                self._landed.set()

    async def finish(self, audit_id: int, status: int) -> None:
        """Set the final status of a row written by :meth:`record`: queued (see the module docstring), written
        here when :meth:`run` is not running or the queue is full. Never raises ``RegistryError`` (failures are
        logged); safe to call from a ``finally`` of a cancelled task (a write is shielded)."""
        self._pending[audit_id] = status
        if not self._running or len(self._pending) >= self._max_pending:
            await self.flush()
        elif not self._queued.is_set():
            self._queued.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write queued statuses ``flush_interval_s`` after the first of them was queued, until cancelled (the
        app's stop then calls :meth:`flush`)."""
        self._running = True
        try:
            task_status.started()
            while True:
                await self._queued.wait()
                await trio.sleep(self._interval)
                self._queued = trio.Event()
                await self.flush()
        finally:
            self._running = False

    async def flush(self) -> None:
        """Write every queued status now and wait for those riding along with a row. Never raises
        ``RegistryError`` (logged; those statuses are not written)."""
        with trio.CancelScope(shield=True):
            async with self._lock:
                while self._pending or self._riding:
                    if not self._pending:
                        await self._landed.wait()  # a row that fails puts its statuses back: loop again
                        continue
                    finished = self._take(len(self._pending))
                    with trio.move_on_after(self._write_timeout_s) as timer:
                        try:
                            await self._registry.finish_audits(finished)
                        except RegistryError as exc:
                            log.error("%d audit row(s) not finished: %s", len(finished), exc.message)
                    if timer.cancelled_caught:
                        log.error("%d audit row(s) not finished: the registry did not answer in time",
                                  len(finished))

    def _take(self, count: int) -> list[tuple[int, int]]:
        if not self._pending:
            return []
        if count >= len(self._pending):
            taken = list(self._pending.items())
            self._pending.clear()
            return taken
        taken = []
        for audit_id in list(self._pending)[:count]:
            taken.append((audit_id, self._pending.pop(audit_id)))
        return taken
