"""The audit writer: a call's final status rides along with the next row, or is written within the flush interval;
readers and the stop see every status of an answered call."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import trio
import trio.testing

from gateway_quart._audit import AuditWriter
from gateway_quart.registry import SqliteRegistry


class _Counting(SqliteRegistry):
    """A SQLite registry that counts its audit writes."""

    writes: list[str]

    async def record_audit(self, **row: object) -> int:  # type: ignore[override]
        self.writes.append(f"row+{len(row.get('finished') or ())}")  # type: ignore[arg-type]
        return await super().record_audit(**row)  # type: ignore[arg-type]

    async def finish_audits(self, finished: Sequence[tuple[int, int]]) -> None:
        self.writes.append(f"statuses {len(finished)}")
        await super().finish_audits(finished)


async def _registry(tmp_path: Path) -> _Counting:
    registry = await _Counting.open(str(tmp_path / "r.sqlite3"))
    registry.writes = []
    return registry


async def _row(audit: AuditWriter, path: str) -> int:
    return await audit.record(tenant_id="acme", user_id="u", extension_id="echo", method="GET", path=path,
                              request_id=path)


async def _statuses(registry: SqliteRegistry) -> dict[str, int | None]:
    return {e.path: e.status for e in await registry.list_audit("acme", limit=100)}


async def test_a_status_rides_along_with_the_next_row(tmp_path: Path, nursery: trio.Nursery) -> None:
    registry = await _registry(tmp_path)
    audit = AuditWriter(registry, flush_interval_s=60)
    await nursery.start(audit.run)
    first = await _row(audit, "/a")
    await audit.finish(first, 200)
    second = await _row(audit, "/b")
    assert registry.writes == ["row+0", "row+1"]  # one write per call
    assert await _statuses(registry) == {"/a": 200, "/b": None}
    await audit.finish(second, 404)
    await audit.flush()  # what the audit listing does first
    assert registry.writes == ["row+0", "row+1", "statuses 1"]
    assert await _statuses(registry) == {"/a": 200, "/b": 404}
    await registry.aclose()


async def test_a_lone_status_is_written_within_the_interval(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    registry = await _registry(tmp_path)
    audit = AuditWriter(registry, flush_interval_s=0.5)
    await nursery.start(audit.run)
    await audit.finish(await _row(audit, "/a"), 200)
    await trio.sleep(0.4)
    assert registry.writes == ["row+0"]
    await trio.sleep(0.2)
    assert registry.writes == ["row+0", "statuses 1"]
    assert await _statuses(registry) == {"/a": 200}
    await registry.aclose()


async def test_without_run_or_with_a_full_queue_finish_writes(tmp_path: Path, nursery: trio.Nursery) -> None:
    registry = await _registry(tmp_path)
    alone = AuditWriter(registry)
    await alone.finish(await _row(alone, "/a"), 200)
    assert registry.writes == ["row+0", "statuses 1"]
    registry.writes.clear()
    full = AuditWriter(registry, flush_interval_s=60, max_pending=2, max_ride_along=1)
    await nursery.start(full.run)
    ids = [await _row(full, f"/{n}") for n in range(3)]
    await full.finish(ids[0], 200)
    await full.finish(ids[1], 201)  # the second queued status fills the queue: written at once
    assert registry.writes == ["row+0", "row+0", "row+0", "statuses 2"]
    await full.finish(ids[2], 202)
    await _row(full, "/later")  # takes one status with it
    assert registry.writes[-1] == "row+1"
    assert await _statuses(registry) == {"/a": 200, "/0": 200, "/1": 201, "/2": 202, "/later": None}
    await registry.aclose()
