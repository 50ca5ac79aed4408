"""Indexing journal entries in the registry, off the request path, and the retention sweeper.

A runner that recorded an invocation names the entry in its answer (``journal_entry``); the proxy hands an
index row to :meth:`JournalIndexer.submit`, which never waits: rows go into a bounded buffer that a background
task writes to the registry in batches (one transaction per batch). A full buffer drops the row and counts it
(the entry itself is in the store, only unlisted; it still expires with the store's own lifecycle, if any).

:func:`sweep_expired` deletes what outlived ``GATEWAY_JOURNAL_RETENTION_DAYS``: first the sealed object, then
its index row, so an object whose delete failed keeps its row and is retried by the next sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, final

import trio

from contract import ExecuteResult

from ._errors import RegistryError
from .registry import Install, JournalIndexEntry, Registry

log = logging.getLogger("gateway_quart.journal")

DEFAULT_MAX_BUFFERED: Final = 1024
"""Index rows waiting for the registry beyond which new ones are dropped (and counted)."""
DEFAULT_BATCH_SIZE: Final = 128
DEFAULT_WRITE_TIMEOUT_S: Final = 10.0
DEFAULT_SWEEP_INTERVAL_S: Final = 600.0
DEFAULT_SWEEP_BATCH: Final = 500


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def outcome_of(result: ExecuteResult) -> str:
    """``ok`` when the guest answered, else the failure kind (``timeout``, ``trap``…) or the error code."""
    if result.error is None:
        return "ok"
    if result.timed_out:
        return "timeout"
    kind = result.failure_kind
    if kind is not None:
        return kind.value
    code = result.error_code
    return code.value if code is not None else "error"


def index_row(install: Install, result: ExecuteResult, *, request_id: str | None, retention_days: int,
              content_hash: str | None = None, now: datetime | None = None) -> JournalIndexEntry | None:
    """The index row of the entry ``result`` names (``None`` when the runner recorded nothing).

    ``content_hash`` is the bundle that ran (a canary may route a call to another version than the install's).
    """
    if result.journal_entry is None:
        return None
    at = now or datetime.now(UTC)
    return JournalIndexEntry(
        id=result.journal_entry,
        tenant_id=install.tenant_id,
        extension_id=install.extension_id,
        install_id=install.id,
        content_hash=content_hash or install.version.content_hash,
        request_id=request_id,
        outcome=outcome_of(result),
        status=result.status,
        recorded_at=_stamp(at),
        expires_at=_stamp(at + timedelta(days=retention_days)),
    )


@dataclass(frozen=True)
class IndexerStatistics:
    buffered: int
    written: int
    dropped: int
    failed: int


@final
class JournalIndexer:
    """Writes index rows to the registry in the background (see the module docstring).

    Args:
        registry: where rows go.
        max_buffered: rows waiting beyond which :meth:`submit` drops.
        batch_size: rows per registry transaction at most.
        write_timeout_s: how long one batch may take before it is given up (its rows counted as failed).
    """

    def __init__(
        self,
        registry: Registry,
        *,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        batch_size: int = DEFAULT_BATCH_SIZE,
        write_timeout_s: float = DEFAULT_WRITE_TIMEOUT_S,
    ) -> None:
        self._registry = registry
        self._max_buffered = max_buffered
        self._batch_size = max(1, batch_size)
        self._write_timeout_s = write_timeout_s
        self._buffer: list[JournalIndexEntry] = []
        self._in_flight = 0
        self._wakeup = trio.Event()
        self._idle = trio.Event()
        self._idle.set()
        self._running = False
        self._written = self._dropped = self._failed = 0

    def statistics(self) -> IndexerStatistics:
        return IndexerStatistics(len(self._buffer) + self._in_flight, self._written, self._dropped, self._failed)

    def submit(self, row: JournalIndexEntry) -> bool:
        """Queue ``row``; never blocks, never raises. False (and counted) when the buffer is full."""
        if len(self._buffer) + self._in_flight >= self._max_buffered:
            self._dropped += 1
            log.warning("journal index row %s dropped: %d rows already waiting for the registry",
                        row.id, self._max_buffered)
            return False
        self._buffer.append(row)
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        self._wakeup.set()
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write queued rows until cancelled (the app's nursery); what is left is written by :meth:`flush`."""
        self._running = True
        task_status.started()
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup = trio.Event()
                await self._drain()
        finally:
            self._running = False

    async def flush(self) -> None:
        """Wait until every row submitted so far is written (or given up); writes them here when no task runs."""
        if not self._running:
            await self._drain()
            return
        while not self._idle.is_set():
            await self._idle.wait()

    async def _drain(self) -> None:
        while self._buffer:
            batch, self._buffer = self._buffer[: self._batch_size], self._buffer[self._batch_size:]
            self._in_flight += len(batch)
            try:
                await self._write(batch)
            finally:
                self._in_flight -= len(batch)
        if not self._in_flight:
            self._idle.set()

    async def _write(self, batch: list[JournalIndexEntry]) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(self._write_timeout_s) as timer:
            try:
                await self._registry.record_journal_entries(batch)
                self._written += len(batch)
            except RegistryError as exc:
                self._failed += len(batch)
                log.error("%d journal index rows not written: %s", len(batch), exc.message)
            except Exception:  # a background task: whatever failed, the gateway keeps serving
                self._failed += len(batch)
                log.exception("%d journal index rows not written", len(batch))
        if timer.cancelled_caught:
            self._failed += len(batch)
            log.error("%d journal index rows not written: the registry did not answer in time", len(batch))


DeleteObject = Callable[[JournalIndexEntry], Awaitable[None]]


async def sweep_expired(registry: Registry, delete_object: DeleteObject | None, *, now: datetime | None = None,
                        batch: int = DEFAULT_SWEEP_BATCH) -> int:
    """Delete every entry whose retention ended (object first, then row); returns the rows deleted.

    ``delete_object`` removes the sealed object (``JournalReader.delete``; a missing object is not an error);
    ``None`` (no journal store configured) removes rows only. An object that fails to delete keeps its row.
    """
    stamp = _stamp(now or datetime.now(UTC))
    deleted = 0
    while True:
        expired = await registry.list_expired_journal_entries(stamp, limit=batch)
        if not expired:
            return deleted
        gone: list[str] = []
        for entry in expired:
            if delete_object is not None:
                try:
                    await delete_object(entry)
                except Exception as exc:  # one bad object must not stop the sweep; retried next time
                    log.error("journal entry %s not deleted from the store: %s", entry.id, exc)
                    continue
            gone.append(entry.id)
        deleted += await registry.delete_journal_entries(gone)
        if len(expired) < batch or not gone:
            return deleted


async def run_sweeper(registry: Registry, delete_object: DeleteObject | None, *,
                      interval_s: float = DEFAULT_SWEEP_INTERVAL_S) -> None:
    """Sweep every ``interval_s`` until cancelled; a failed sweep is logged and retried at the next tick."""
    while True:
        try:
            swept = await sweep_expired(registry, delete_object)
            if swept:
                log.info("journal retention: %d expired entries deleted", swept)
        except RegistryError as exc:
            log.error("journal retention sweep failed: %s", exc.message)
        except Exception:  # a background task: whatever failed, the gateway keeps serving
            log.exception("journal retention sweep failed")
        await trio.sleep(interval_s)


async def run_journal_tasks(indexer: JournalIndexer | None, registry: Registry, delete_object: DeleteObject | None,
                            scope: trio.CancelScope) -> None:
    """The index writer and the retention sweeper, until ``scope`` is cancelled (the app stops serving)."""
    with scope:
        async with trio.open_nursery() as nursery:
            if indexer is not None:
                nursery.start_soon(indexer.run)
            nursery.start_soon(run_sweeper, registry, delete_object)
