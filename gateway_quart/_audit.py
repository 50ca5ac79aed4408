"""Audit rows of proxied calls: the final status is set in the background, off the response path.

The row itself is written before the call runs (the contract's order: a gateway that dies mid-call still
leaves the row); :meth:`AuditWriter.finish` sets its status from a task in the app's nursery while the response
goes out. Reading the audit log (:meth:`AuditWriter.flush`) and stopping the app wait for the updates still in
flight, so an answered call's status is always visible to the admin API of the same process. When too many
writes are in flight (a slow database) the caller waits for its own: backpressure, not an unbounded backlog.
"""

from __future__ import annotations

import logging
from typing import Final, final

import trio

from ._errors import RegistryError
from .registry import Registry

log = logging.getLogger("gateway_quart.audit")

DEFAULT_MAX_PENDING: Final = 256
DEFAULT_WRITE_TIMEOUT_S: Final = 5.0


@final
class AuditWriter:
    """Writes audit rows through ``registry``, in ``nursery`` when one is given (else inline).

    Args:
        registry: where rows go.
        nursery: a long-lived nursery (the app's) for background writes; ``None`` writes inline.
        max_pending: background writes in flight beyond which callers write inline.
        write_timeout_s: how long one write may take before it is given up (and logged).
    """

    def __init__(
        self,
        registry: Registry,
        *,
        nursery: trio.Nursery | None,
        max_pending: int = DEFAULT_MAX_PENDING,
        write_timeout_s: float = DEFAULT_WRITE_TIMEOUT_S,
    ) -> None:
        self._registry = registry
        self._nursery = nursery
        self._max_pending = max_pending
        self._write_timeout_s = write_timeout_s
        self._pending = 0
        self._idle = trio.Event()
        self._idle.set()

    async def finish(self, audit_id: int, status: int, *, request_id: str) -> None:
        """Set the final status of an audit row written before the call. Never raises ``RegistryError``
        (failures are logged); safe to call from a ``finally`` of a cancelled task (the write is shielded)."""

        async def write() -> None:
            with trio.CancelScope(shield=True), trio.move_on_after(self._write_timeout_s) as timer:
                try:
                    await self._registry.finish_audit(audit_id, status)
                except RegistryError as exc:
                    log.error("audit row of request %s not finished: %s", request_id, exc.message)
            if timer.cancelled_caught:
                log.error("audit row of request %s not finished: the registry did not answer in time", request_id)

        if self._nursery is None or self._pending >= self._max_pending:
            await write()
            return
        self._pending += 1
        if self._idle.is_set():
            self._idle = trio.Event()

        async def background() -> None:
            try:
                await write()
            finally:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.set()

        try:
            self._nursery.start_soon(background)
        except RuntimeError:  # the app's nursery already closed (shutting down): write it here instead
            self._pending -= 1
            if self._pending == 0:
                self._idle.set()
            await write()

    async def flush(self) -> None:
        """Wait until every background write started so far has finished."""
        while self._pending:
            await self._idle.wait()
