"""The runner's side of the invocation journal: record an invocation into an entry, write it off the request path,
and read one back for a replay.

An ``/v1/execute`` that carries a ``journal`` policy other than ``off`` runs with a :class:`Recording` (the engine's
:class:`~runner_trio.engine.CallRecorder` on its :class:`~runner_trio.engine.Invocation`); once the result is known,
``journal.should_record`` decides (the ``errors`` policy needs the outcome), and the entry document (format
``alga-journal/1``, see docs/journal.md) goes to ``journal.JournalWriter.submit``: a bounded queue written by a
background task of the runtime, so an invocation never waits for the store (a full queue drops the entry and counts
it). Without ``RUNNER_JOURNAL_KEYS`` there is no journal: the policy is ignored and that is logged once.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, final

import trio

import journal
from bundles.store import BundleStore, open_store
from contract import ExecuteRequest, ExecuteResult, encode_execute_request, encode_execute_result

from ._config import Settings
from ._errors import ConfigError
from ._metrics import RunnerMetrics
from .engine import CallRecorder

__all__ = ["SECRET_FUNCTIONS", "JournalService", "Recording", "entry_document"]

log = logging.getLogger("runner_trio.journal")

SECRET_FUNCTIONS: Final = frozenset({"alga:extension/secrets#get"})
"""Host functions whose answer is a secret value (named by their first argument): redacted from every entry."""
_METRICS_SYNC_S: Final = 1.0
_CLOSE_TIMEOUT_S: Final = 5.0
JOURNAL_RESULTS: Final = ("written", "dropped", "failed")


@dataclass
class Recording:
    """One invocation being recorded: its call recorder and what the entry needs from the invocation."""

    calls: CallRecorder
    grants: frozenset[str] = frozenset()


def entry_document(
    entry_id: str,
    request: ExecuteRequest,
    recording: Recording,
    result: ExecuteResult,
    *,
    outcome: str,
    timing: Mapping[str, float],
) -> dict[str, Any]:
    """The entry (format ``alga-journal/1``) of a recorded invocation, every secret value read replaced.

    The request keeps everything but its secret envelope (a replay answers secrets from the record); the result
    is the answer the caller got, without the entry's own id.
    """
    ctx = request.context
    encoded_request = encode_execute_request(dataclasses.replace(request, secret_envelope=None, journal=None))
    encoded_request["secret_envelope"] = None
    parts = recording.calls.document_parts()
    doc: dict[str, Any] = {
        "format": journal.JOURNAL_FORMAT,
        "entry_id": entry_id,
        "recorded_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "tenant_id": ctx.tenant_id,
        "extension_id": ctx.extension_id,
        "content_hash": ctx.content_hash,
        "install_id": ctx.install_id,
        "request_id": ctx.request_id,
        "request": encoded_request,
        "grants": sorted(recording.grants),
        "calls": parts["calls"],
        "output": parts["output"],
        "secrets_read": parts["secrets_read"],
        "outcome": outcome,
        "result": encode_execute_result(dataclasses.replace(result, journal_entry=None, usage=None)),
        "timing": {f"{name}_ms": round(seconds * 1000, 3) for name, seconds in timing.items()},
        "dropped_calls": parts["dropped_calls"],
    }
    # The calls and output are redacted already; the request and the result may carry a value too (an echo).
    secrets = {name: value for value, name in recording.calls.secret_values.items()}
    return journal.redact_secrets(doc, secrets) if secrets else doc


@final
class JournalService:
    """The journal of one runner: its writer (run by :meth:`run` in the runtime's nursery) and reader.

    Build with :meth:`open` (None when ``RUNNER_JOURNAL_KEYS`` is unset).
    """

    def __init__(
        self,
        keyring: journal.JournalKeyring,
        store: BundleStore,
        *,
        prefix: str,
        max_queue: int,
        metrics: RunnerMetrics,
        owns_store: bool,
    ) -> None:
        self.keyring = keyring
        self.store = store
        self.prefix = prefix
        self.writer = journal.JournalWriter(store, keyring, prefix=prefix, max_queue=max_queue)
        self.reader = journal.JournalReader(store, keyring, prefix=prefix)
        self._metrics = metrics
        self._owns_store = owns_store
        self._synced = dict.fromkeys(JOURNAL_RESULTS, 0)

    @classmethod
    def open(cls, settings: Settings, bundle_store: BundleStore, metrics: RunnerMetrics) -> JournalService | None:
        """The journal ``settings`` describe, writing to ``RUNNER_JOURNAL_STORE`` or else ``bundle_store``.

        Raises:
            ConfigError: the keys or the store URL are unusable.
        """
        if settings.journal_keys is None:
            return None
        try:
            keyring = journal.JournalKeyring.parse(settings.journal_keys)
        except (journal.JournalError, ValueError) as exc:
            raise ConfigError("RUNNER_JOURNAL_KEYS", str(exc)) from None
        store, owns = bundle_store, False
        if settings.journal_store:
            try:
                store, owns = open_store(settings.journal_store, env=settings.store_env), True
            except Exception as exc:
                raise ConfigError("RUNNER_JOURNAL_STORE", str(exc)) from None
        return cls(keyring, store, prefix=settings.journal_prefix, max_queue=settings.journal_max_queue,
                   metrics=metrics, owns_store=owns)

    @staticmethod
    def start() -> Recording:
        """A recording for one invocation (a recorder that redacts the secrets it sees read)."""
        return Recording(CallRecorder(secret_functions=SECRET_FUNCTIONS))

    def finish(
        self,
        recording: Recording,
        request: ExecuteRequest,
        result: ExecuteResult,
        *,
        outcome: str,
        timing: Mapping[str, float],
    ) -> ExecuteResult:
        """Queue the entry when the request's policy wants this outcome; the result with ``journal_entry`` set
        when it was queued. Never blocks and never fails the invocation."""
        policy = request.journal
        if policy is None:
            return result
        failed = result.error is not None or result.status >= 500
        try:
            if not journal.should_record(policy, failed=failed):
                return result
            entry_id = journal.new_entry_id()
            doc = entry_document(entry_id, request, recording, result, outcome=outcome, timing=timing)
            queued = self.writer.submit(request.context.tenant_id, request.context.extension_id, entry_id, doc)
        except Exception:
            log.exception("journal entry not recorded tenant=%s extension=%s request=%s",
                          request.context.tenant_id, request.context.extension_id, request.context.request_id)
            return result
        if not queued:
            self.sync_metrics()
            return result
        return dataclasses.replace(result, journal_entry=entry_id)

    async def read(self, tenant_id: str, extension_id: str, entry_id: str) -> dict[str, Any]:
        """The decrypted entry. Raises ``journal.JournalNotFound`` (and the rest of ``journal.JournalError``)."""
        return await self.reader.read(tenant_id, extension_id, entry_id)

    def sync_metrics(self) -> None:
        """Copy the writer's counts into ``runner_journal_entries_total{result}``."""
        stats = self.writer.statistics()
        for name in JOURNAL_RESULTS:
            value = int(getattr(stats, name))
            delta = value - self._synced[name]
            if delta > 0:
                self._metrics.journal_entries.labels(name).inc(delta)
                self._synced[name] = value

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer, and the metrics kept current while it runs."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.writer.run)
            nursery.start_soon(self._sync_loop)
            task_status.started()

    async def _sync_loop(self) -> None:
        while True:
            self.sync_metrics()
            await trio.sleep(_METRICS_SYNC_S)

    async def flush(self) -> None:
        """Wait until every queued entry is written (tests, shutdown)."""
        await self.writer.flush()
        self.sync_metrics()

    async def aclose(self) -> None:
        started = time.monotonic()
        with trio.move_on_after(_CLOSE_TIMEOUT_S):  # a hanging store loses the queued rest, never the shutdown
            await self.writer.flush()
            await self.writer.aclose()
        self.sync_metrics()
        if self._owns_store:
            await self.store.aclose()
        log.debug("journal closed in %.3f s", time.monotonic() - started)
