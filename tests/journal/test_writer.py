"""``JournalWriter`` and ``JournalReader`` on a real ``FileStore``: written off the request path, read back,
dropped when full or too large, failures counted while the writer goes on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from bundles.store import FileStore, S3Settings, S3Store
from journal import (
    JOURNAL_FORMAT,
    JournalCorrupt,
    JournalKeyring,
    JournalNotFound,
    JournalReader,
    JournalStoreError,
    JournalWriter,
    WriterStatistics,
    entry_key,
    new_entry_id,
)


def _doc(entry_id: str, tenant: str = "acme", **extra: Any) -> dict[str, Any]:
    return {"format": JOURNAL_FORMAT, "entry_id": entry_id, "tenant_id": tenant, "calls": [], **extra}


def _entries(root: Path) -> list[str]:
    """Every entry file under the store's root, relative to it (no temporary files, no strays)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.jrnl")) if root.exists() else []


def _read(path: Path) -> bytes:
    return path.read_bytes()


@pytest.fixture
def ring() -> JournalKeyring:
    return JournalKeyring.parse(JournalKeyring.generate("k1"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


async def test_entries_are_written_and_read_back(root: Path, ring: JournalKeyring) -> None:
    ids = [new_entry_id() for _ in range(5)]
    async with FileStore(root) as store, trio.open_nursery() as nursery:
        writer = JournalWriter(store, ring)
        await nursery.start(writer.run)
        for entry_id in ids:
            assert writer.submit("acme", "billing", entry_id, _doc(entry_id, note="ünïcode"))
        await writer.flush()
        assert writer.statistics() == WriterStatistics(queued=0, written=5, dropped=0, failed=0)
        reader = JournalReader(store, ring)
        for entry_id in ids:
            assert await reader.read("acme", "billing", entry_id) == _doc(entry_id, note="ünïcode")
        await writer.aclose()
    on_disk = _entries(root)
    assert on_disk == sorted(f"journal/v1/acme/billing/{entry_id}.jrnl" for entry_id in ids)
    assert all(b"acme" not in _read(root / name) for name in on_disk)


async def test_the_document_is_snapshotted_at_submit(root: Path, ring: JournalKeyring) -> None:
    entry_id = new_entry_id()
    doc = _doc(entry_id)
    async with FileStore(root) as store:
        writer = JournalWriter(store, ring)
        assert writer.submit("acme", "billing", entry_id, doc)
        doc["calls"].append("changed after submit")
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            await writer.aclose()
        assert await JournalReader(store, ring).read("acme", "billing", entry_id) == _doc(entry_id)


async def test_a_full_queue_drops_and_counts_without_blocking(root: Path, ring: JournalKeyring) -> None:
    async with FileStore(root) as store:
        writer = JournalWriter(store, ring, max_queue=2)
        # run() is not started: nothing drains the queue, and submit still returns at once.
        results = [writer.submit("acme", "billing", f"e{i}", _doc(f"e{i}")) for i in range(5)]
        assert results == [True, True, False, False, False]
        assert writer.statistics() == WriterStatistics(queued=2, written=0, dropped=3, failed=0)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            await writer.flush()
            assert writer.statistics() == WriterStatistics(queued=0, written=2, dropped=3, failed=0)
            # room again once drained
            assert writer.submit("acme", "billing", "e9", _doc("e9"))
            await writer.aclose()
        reader = JournalReader(store, ring)
        assert (await reader.read("acme", "billing", "e1"))["entry_id"] == "e1"
        with pytest.raises(JournalNotFound):
            await reader.read("acme", "billing", "e2")
        assert writer.statistics().written == 3


async def test_an_entry_over_the_cap_is_dropped(root: Path, ring: JournalKeyring) -> None:
    async with FileStore(root) as store, trio.open_nursery() as nursery:
        writer = JournalWriter(store, ring, max_entry_bytes=1000)
        await nursery.start(writer.run)
        assert not writer.submit("acme", "billing", "big", _doc("big", blob="x" * 1000))
        assert writer.submit("acme", "billing", "small", _doc("small"))
        await writer.aclose()
    assert writer.statistics() == WriterStatistics(queued=0, written=1, dropped=1, failed=0)
    assert _entries(root) == ["journal/v1/acme/billing/small.jrnl"]


@pytest.mark.parametrize(
    ("tenant", "doc"),
    [("acme", {"raw": b"not JSON"}), ("acme", {1: "non-string key"}), ("../escape", {}), ("a/b", {})],
)
async def test_what_cannot_be_written_is_dropped_never_raised(
    root: Path, ring: JournalKeyring, tenant: str, doc: dict[Any, Any]
) -> None:
    async with FileStore(root) as store:
        writer = JournalWriter(store, ring)
        assert writer.submit(tenant, "billing", new_entry_id(), doc) is False
        assert writer.statistics().dropped == 1
    assert _entries(root) == []


async def test_a_closed_writer_drops(root: Path, ring: JournalKeyring) -> None:
    async with FileStore(root) as store, trio.open_nursery() as nursery:
        writer = JournalWriter(store, ring)
        await nursery.start(writer.run)
        await writer.aclose()
        assert not writer.submit("acme", "billing", "late", _doc("late"))
    assert writer.statistics() == WriterStatistics(queued=0, written=0, dropped=1, failed=0)


async def test_aclose_writes_what_is_queued(root: Path, ring: JournalKeyring) -> None:
    async with FileStore(root) as store:
        writer = JournalWriter(store, ring, max_concurrent_writes=2)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            for i in range(20):
                assert writer.submit("acme", "billing", f"e{i}", _doc(f"e{i}"))
            await writer.aclose()  # run() ends after the drain, so the nursery exits
    assert writer.statistics() == WriterStatistics(queued=0, written=20, dropped=0, failed=0)
    assert len(_entries(root)) == 20


async def test_store_failures_are_counted_and_the_writer_goes_on(
    root: Path, tmp_path: Path, ring: JournalKeyring, caplog: pytest.LogCaptureFixture
) -> None:
    # A symlink planted where tenant "acme"'s entries go: the file store refuses to follow it (StoreError).
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "journal" / "v1").mkdir(parents=True)
    (root / "journal" / "v1" / "acme").symlink_to(elsewhere, target_is_directory=True)
    async with FileStore(root) as store, trio.open_nursery() as nursery:
        writer = JournalWriter(store, ring)
        await nursery.start(writer.run)
        assert writer.submit("acme", "billing", "lost1", _doc("lost1"))
        assert writer.submit("globex", "billing", "kept1", _doc("kept1", "globex"))
        assert writer.submit("acme", "billing", "lost2", _doc("lost2"))
        assert writer.submit("globex", "billing", "kept2", _doc("kept2", "globex"))
        await writer.flush()
        assert writer.statistics() == WriterStatistics(queued=0, written=2, dropped=0, failed=2)
        reader = JournalReader(store, ring)
        assert (await reader.read("globex", "billing", "kept2"))["entry_id"] == "kept2"
        await writer.aclose()
    assert os.listdir(elsewhere) == []
    failures = [r for r in caplog.records if r.name == "journal" and "not written" in r.getMessage()]
    assert len(failures) == 2  # logged at the 1st, 2nd, 4th, ... failure
    assert all("journal/v1/acme/billing/lost" in r.getMessage() and "StoreError" in r.getMessage() for r in failures)


async def test_run_only_once(root: Path, ring: JournalKeyring) -> None:
    async with FileStore(root) as store, trio.open_nursery() as nursery:
        writer = JournalWriter(store, ring)
        await nursery.start(writer.run)
        with pytest.raises(RuntimeError, match="only once"):
            await writer.run()
        await writer.aclose()


def test_writer_limits_are_checked(ring: JournalKeyring) -> None:
    store = FileStore("/nonexistent-root-never-touched")
    with pytest.raises(ValueError, match="must be positive"):
        JournalWriter(store, ring, max_queue=0)
    with pytest.raises(ValueError, match="absolute"):
        JournalWriter(store, ring, prefix="/abs")


async def test_reader_not_found_and_delete(root: Path, ring: JournalKeyring) -> None:
    entry_id = new_entry_id()
    async with FileStore(root) as store, trio.open_nursery() as nursery:
        writer = JournalWriter(store, ring)
        await nursery.start(writer.run)
        assert writer.submit("acme", "billing", entry_id, _doc(entry_id))
        await writer.aclose()
        reader = JournalReader(store, ring)
        with pytest.raises(JournalNotFound, match="no journal entry"):
            await reader.read("globex", "billing", entry_id)
        with pytest.raises(JournalNotFound, match="malformed id"):
            await reader.read("acme", "billing", "../../etc/passwd")
        await reader.delete("acme", "billing", entry_id)
        with pytest.raises(JournalNotFound):
            await reader.read("acme", "billing", entry_id)
        await reader.delete("acme", "billing", entry_id)  # gone already: not an error
        await reader.delete("acme", "billing", "not/an/id")
    assert _entries(root) == []


async def test_reader_with_another_keyring_or_moved_blob(root: Path, ring: JournalKeyring) -> None:
    entry_id = new_entry_id()
    async with FileStore(root) as store, trio.open_nursery() as nursery:
        writer = JournalWriter(store, ring)
        await nursery.start(writer.run)
        assert writer.submit("acme", "billing", entry_id, _doc(entry_id))
        await writer.aclose()
        # The blob copied under another tenant's key does not open there.
        blob = await store.get_bytes(entry_key("acme", "billing", entry_id), max_bytes=1 << 20)
        await store.put_bytes(entry_key("globex", "billing", entry_id), blob)
        with pytest.raises(JournalCorrupt):
            await JournalReader(store, ring).read("globex", "billing", entry_id)
        impostor = JournalKeyring.parse(JournalKeyring.generate("k1"))
        with pytest.raises(JournalCorrupt):
            await JournalReader(store, impostor).read("acme", "billing", entry_id)


async def test_reader_reports_a_failing_store(root: Path, ring: JournalKeyring) -> None:
    store = FileStore(root)
    await store.aclose()
    with pytest.raises(JournalStoreError, match="journal store failed"):
        await JournalReader(store, ring).read("acme", "billing", "e1")


async def test_a_hanging_store_never_blocks_submit(ring: JournalKeyring) -> None:
    # An "S3 endpoint" that accepts connections and never answers: every write hangs.
    connected = trio.Event()

    async def silent(stream: trio.SocketStream) -> None:
        connected.set()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, silent, 0)
        port = listeners[0].socket.getsockname()[1]
        settings = S3Settings(
            access_key="AKIAEXAMPLE", secret_key="x", endpoint_url=f"http://127.0.0.1:{port}", force_path_style=True
        )
        async with S3Store(settings, bucket="journal", max_attempts=1, read_timeout=600) as store:
            writer = JournalWriter(store, ring, max_queue=2, max_concurrent_writes=1)
            await nursery.start(writer.run)
            await trio.testing.wait_all_tasks_blocked()  # the writer task waits for entries
            # It takes the first entry at once; two more wait in the queue; the rest are dropped.
            results = [writer.submit("acme", "billing", f"e{i}", _doc(f"e{i}")) for i in range(5)]
            assert results == [True, True, True, False, False]
            await connected.wait()  # the writer is stuck on its first entry
            assert not writer.submit("acme", "billing", "e5", _doc("e5"))
            assert writer.statistics() == WriterStatistics(queued=3, written=0, dropped=3, failed=0)
            nursery.cancel_scope.cancel()
