"""A journal whose store hangs: invocations go on, entries past the queue are dropped and counted."""

from __future__ import annotations

import dataclasses

import trio

import journal
from contract import decode_execute_request, parse_journal_policy
from runner_trio import Settings
from runner_trio._execute import Timing
from runner_trio._journal import JournalService
from runner_trio._metrics import RunnerMetrics
from runner_trio._wire import ExecuteRequest, ExecuteResult


class HangingStore:
    """A bundle store whose writes never finish (a stuck S3 endpoint)."""

    def __init__(self) -> None:
        self.puts = 0

    async def put_bytes(self, key: str, data: bytes) -> None:
        self.puts += 1
        await trio.sleep_forever()

    async def aclose(self) -> None:
        pass


def request() -> ExecuteRequest:
    doc = {"context": {"tenant_id": "t", "extension_id": "e", "content_hash": "a" * 64},
           "http": {"method": "GET", "path": "/", "query": {}, "headers": {}, "body_b64": None},
           "limits": {}, "providers": []}
    parsed = decode_execute_request(doc, max_body_bytes=1024)
    return dataclasses.replace(parsed, journal=parse_journal_policy("all"))


async def test_a_full_queue_drops_and_counts_without_waiting(nursery: trio.Nursery) -> None:
    metrics = RunnerMetrics(multiprocess=False)
    store = HangingStore()
    settings = Settings(journal_keys=journal.JournalKeyring.generate(), journal_max_queue=2)
    service = JournalService.open(settings, store, metrics)  # type: ignore[arg-type]
    assert service is not None
    await nursery.start(service.run)
    ok = ExecuteResult(status=200, headers={}, body=b"hi")
    ids = []
    with trio.fail_after(5):  # finish() is synchronous: a hanging store cannot hold it
        for _ in range(10):
            result = service.finish(service.start(), request(), ok, outcome="ok", timing=Timing().phases())
            assert result.status == 200
            ids.append(result.journal_entry)
            await trio.lowlevel.checkpoint()  # let the writer take what it can
    kept = [entry for entry in ids if entry is not None]
    stats = service.writer.statistics()
    # The writes in flight (one per concurrent writer) hold some, two wait in the queue; the rest were dropped.
    assert stats.written == 0
    assert stats.queued == len(kept) == store.puts + 2
    assert stats.dropped == 10 - len(kept) > 0
    service.sync_metrics()
    assert f'runner_journal_entries_total{{result="dropped"}} {float(stats.dropped)}' in metrics.render().decode()
