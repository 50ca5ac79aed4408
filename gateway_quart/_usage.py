"""Usage accounting off the request path: each runner answer's ``usage`` summed per (tenant, extension, minute).

The proxy hands every answer to :meth:`UsageRecorder.record`: a synchronous dictionary update (no I/O, no
await, never raises), so accounting costs a request nothing it could wait on. The sums wait in memory, one
entry per (tenant, extension, UTC minute) however many calls it took, and :meth:`UsageRecorder.run` (a task
in the app's nursery) writes them every ``flush_interval_s`` in one registry transaction that adds them to the
``usage_minutes`` rows (upsert-add, so any number of gateways can flush the same minute).

Exactness (what billing can rely on; docs/operations.md "Usage, budgets and billing"):

* every answered call is counted once in the gateway that proxied it;
* a full table of pending sums (``max_pending_rows``, e.g. a registry down for long) drops new (tenant,
  extension, minute) entries and counts them (``statistics().dropped``): accounting never blocks traffic;
* a failed write keeps its sums and retries them on the next flush; a gateway killed before a flush loses
  at most ``flush_interval_s`` of sums (at-most-once); on PostgreSQL a commit whose acknowledgement is lost
  (the connection drops during COMMIT) is retried too and may count that batch twice (the only
  at-least-once case); a graceful stop flushes everything.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, final

import trio

from contract import USAGE_FIELDS, ExecuteResult

from ._errors import RegistryError
from .registry import Registry, UsageDelta

log = logging.getLogger("gateway_quart.usage")

DEFAULT_FLUSH_INTERVAL_S: Final = 1.0
DEFAULT_MAX_PENDING_ROWS: Final = 100_000
"""(tenant, extension, minute) sums held in memory at most; beyond, new ones are dropped (and counted)."""
DEFAULT_WRITE_BATCH: Final = 500
DEFAULT_RETENTION_DAYS: Final = 400
"""Days of usage rows kept (13 months and change: a year's invoices and their disputes); 0 keeps them forever."""
SWEEP_INTERVAL_S: Final = 3600.0
"""How often :meth:`UsageRecorder.run` deletes rows past the retention (and once at start)."""
"""Rows per registry transaction: a backlog (after an outage) is written in several, never holding the registry's
write lock for long."""
MAX_CALL_KEYS: Final = 64
"""Distinct ``calls.<capability>`` keys kept per sum; more are ignored (a runner names a handful)."""
CALLS_PREFIX: Final = "calls."
_CALL_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._-]{0,63}")
_CALLS_AT: Final = len(CALLS_PREFIX)
_FIELDS: Final = frozenset(USAGE_FIELDS)


def minute_of(epoch_s: float) -> str:
    """The RFC 3339 start of the UTC minute holding ``epoch_s``: ``2026-12-06T10:15:00Z``."""
    return datetime.fromtimestamp(int(epoch_s // 60) * 60, UTC).strftime("%Y-%m-%dT%H:%M:00Z")


def failed(result: ExecuteResult) -> bool:
    """Whether an answer counts as an error: the runner reported one, or the guest answered 5xx."""
    return result.error is not None or result.status >= 500


@dataclass
class _Sums:
    invocations: int = 0
    errors: int = 0
    fields: dict[str, float] = field(default_factory=dict)
    calls: dict[str, float] = field(default_factory=dict)

    def count(self, result: ExecuteResult) -> None:
        """Add one answer: its usage fields and ``calls.<capability>`` keys (others ignored)."""
        usage = result.usage
        # A failure without usage means the guest never started (runner overloaded, bundle missing): an error of
        # the call, but no invocation to bill.
        if result.error is None or usage is not None:
            self.invocations += 1
        if failed(result):
            self.errors += 1
        if not usage:
            return
        fields, calls = self.fields, self.calls
        for name, value in usage.items():
            if name in _FIELDS:
                fields[name] = fields.get(name, 0.0) + value
            elif name.startswith(CALLS_PREFIX) and value > 0:
                capability = name[_CALLS_AT:]
                if capability in calls:
                    calls[capability] += value
                elif len(calls) < MAX_CALL_KEYS and _CALL_NAME.fullmatch(capability):
                    calls[capability] = float(value)

    def add(self, other: _Sums) -> None:
        self.invocations += other.invocations
        self.errors += other.errors
        for name, value in other.fields.items():
            self.fields[name] = self.fields.get(name, 0.0) + value
        for name, value in other.calls.items():
            if name in self.calls or len(self.calls) < MAX_CALL_KEYS:
                self.calls[name] = self.calls.get(name, 0.0) + value


@dataclass(frozen=True)
class UsageStatistics:
    recorded: int
    """Answers accounted (into a pending sum)."""
    dropped: int
    """Answers not accounted because the pending table was full."""
    flushed_rows: int
    """Row deltas written to the registry."""
    failed_writes: int
    """Flushes that failed (their sums were kept for the next one)."""
    pending_rows: int


@final
class UsageRecorder:
    """Sums answers' usage per (tenant, extension, minute) and writes the sums to ``registry`` in batches.

    Args:
        registry: where ``usage_minutes`` rows are added to.
        flush_interval_s: how often :meth:`run` writes what is pending.
        max_pending_rows: pending sums kept at most (see the module docstring).
        write_batch: rows written per registry transaction.
        retention_days: rows of minutes older than this are deleted by :meth:`sweep` (0: never).
        clock: seconds since the epoch (``time.time``); tests pass their own.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        max_pending_rows: int = DEFAULT_MAX_PENDING_ROWS,
        write_batch: int = DEFAULT_WRITE_BATCH,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._retention_days = retention_days
        self._interval = flush_interval_s
        self._max_pending = max_pending_rows
        self._write_batch = max(1, write_batch)
        self._clock = clock
        self._pending: dict[tuple[str, str, int], _Sums] = {}  # by (tenant, extension, minutes since the epoch)
        self._lock = trio.Lock()  # one write at a time: a flush() during run()'s write waits for it
        self._recorded = self._dropped = self._flushed = self._failed = 0

    def record(self, tenant_id: str, extension_id: str, result: ExecuteResult) -> bool:
        """Account one answer (its ``usage``, one invocation unless it failed before the guest started, an error
        when it failed); never blocks or raises.

        Returns:
            False when the pending table was full and the answer was dropped (counted).
        """
        key = (tenant_id, extension_id, int(self._clock() // 60))
        sums = self._pending.get(key)
        if sums is None:
            if len(self._pending) >= self._max_pending:
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 10_000 == 0:
                    log.error("usage not accounted: %d pending sums (registry slow or down?); %d answers dropped",
                              len(self._pending), self._dropped)
                return False
            sums = self._pending[key] = _Sums()
        sums.count(result)
        self._recorded += 1
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Flush every ``flush_interval_s`` and sweep every :data:`SWEEP_INTERVAL_S` until cancelled (the app's stop
        then calls :meth:`flush`)."""
        task_status.started()
        next_sweep = trio.current_time()
        while True:
            await trio.sleep(self._interval)
            await self.flush()
            if trio.current_time() >= next_sweep:
                next_sweep = trio.current_time() + SWEEP_INTERVAL_S
                await self.sweep()

    async def sweep(self) -> int:
        """Delete the rows of minutes older than the retention; returns how many went (0 when retention is off).

        Every gateway sweeps; deleting rows another one already deleted is harmless. Never raises
        ``RegistryError`` (logged, retried at the next sweep).
        """
        if self._retention_days <= 0:
            return 0
        cutoff = minute_of(self._clock() - self._retention_days * 86_400)
        try:
            deleted = await self._registry.delete_usage_before(cutoff)
        except RegistryError as exc:
            log.error("usage retention sweep failed (retried later): %s", exc.message)
            return 0
        if deleted:
            log.info("usage retention: %d rows of minutes before %s deleted", deleted, cutoff)
        return deleted

    async def flush(self) -> None:
        """Write every pending sum now (the usage API calls this so that answered calls are visible).

        A failed write is logged and its sums are put back for the next flush; never raises ``RegistryError``.
        """
        async with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, {}
            keys = list(batch)
            for start in range(0, len(keys), self._write_batch):
                chunk = keys[start:start + self._write_batch]
                deltas = [UsageDelta(t, e, minute_of(m * 60), s.invocations, s.errors, s.fields, s.calls)
                          for (t, e, m), s in ((key, batch[key]) for key in chunk)]
                try:
                    with trio.CancelScope(shield=True):  # a cancelled flush would not know whether it committed
                        await self._registry.add_usage(deltas)
                except RegistryError as exc:
                    self._failed += 1
                    rest = keys[start:]
                    log.error("usage flush of %d rows failed (kept for the next one): %s", len(rest), exc.message)
                    for key in rest:
                        self._pending.setdefault(key, _Sums()).add(batch[key])
                    return
                self._flushed += len(deltas)

    def statistics(self) -> UsageStatistics:
        return UsageStatistics(self._recorded, self._dropped, self._flushed, self._failed, len(self._pending))
