"""The record stores (a SQLite file, a real Redis) and the cache over them: one key, several runners."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import psycopg
import pytest
import trio
import trio.testing

from runner_trio.idempotency import (
    Claimed,
    Codec,
    Done,
    Held,
    IdempotencyCache,
    KeyAbandoned,
    KeyInProgress,
    KeyReused,
    PostgresRecords,
    RecordStore,
    RedisRecords,
    SqliteRecords,
    StoreUnavailable,
    open_records,
)
from tests._postgres import PostgresServer
from tests._redis import RedisServer, running_redis

CODEC: Codec[str] = Codec(encode=str.encode, decode=bytes.decode)


@pytest.fixture(params=["sqlite", "redis", "postgresql"])
def records_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """``RUNNER_IDEMPOTENCY_URL`` of each store (the servers are sync fixtures: taken here, not in the async one)."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return server.url
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite://{tmp_path / 'idempotency.sqlite3'}"


@pytest.fixture
async def records(records_url: str, tmp_path: Path) -> AsyncIterator[RecordStore]:
    store = open_records(records_url, default_path=tmp_path / "unused")
    try:
        yield store
    finally:
        await store.aclose()


def _key() -> tuple[str, str, str]:
    return (f"tenant-{uuid.uuid4().hex[:8]}", "ext:1", "order/42")  # separators in ids stay unambiguous


async def test_claim_complete_release(records: RecordStore) -> None:
    key = _key()
    assert await records.claim(key, "fp", "a", lease_until=9e9, ttl=60) == Claimed()
    assert await records.claim(key, "fp", "b", lease_until=9e9, ttl=60) == Held("fp", "a", 9e9)
    assert await records.complete(key, "b", "fp", b"nope", ttl=60) is False, "only the owner stores a result"
    assert await records.complete(key, "a", "fp", b"result", ttl=60) is True
    assert await records.claim(key, "fp", "b", lease_until=9e9, ttl=60) == Done("fp", b"result")
    await records.release(key, "a")  # a result is never released
    assert await records.get(key) == Done("fp", b"result")

    other = _key()
    assert await records.claim(other, "fp", "a", lease_until=9e9, ttl=60) == Claimed()
    await records.release(other, "b")
    assert isinstance(await records.get(other), Held)
    await records.release(other, "a")
    assert await records.get(other) is None
    assert await records.claim(other, "fp2", "b", lease_until=9e9, ttl=60) == Claimed()


async def test_records_expire_after_their_ttl(records: RecordStore) -> None:
    key = _key()
    assert await records.claim(key, "fp", "a", lease_until=9e9, ttl=0.2) == Claimed()
    assert await records.complete(key, "a", "fp", b"r", ttl=0.2)
    await trio.sleep(0.4)
    assert await records.get(key) is None
    assert await records.claim(key, "fp", "b", lease_until=9e9, ttl=60) == Claimed()


async def test_sqlite_records_survive_reopening(tmp_path: Path) -> None:
    key = _key()
    first = SqliteRecords(tmp_path / "i.sqlite3")
    await first.claim(key, "fp", "a", lease_until=9e9, ttl=60)
    await first.complete(key, "a", "fp", b"kept", ttl=60)
    await first.aclose()
    second = open_records(f"sqlite://{tmp_path / 'i.sqlite3'}", default_path=tmp_path / "unused")
    try:
        assert await second.get(key) == Done("fp", b"kept")
    finally:
        await second.aclose()


def test_open_records_refuses_other_schemes(tmp_path: Path) -> None:
    assert isinstance(open_records(None, default_path=tmp_path / "x.sqlite3"), SqliteRecords)
    assert isinstance(open_records("redis://127.0.0.1:1/0", default_path=tmp_path), RedisRecords)
    assert isinstance(open_records("postgresql://runner@db:5432/ext", default_path=tmp_path), PostgresRecords)
    for bad in ("http://example.com/", "sqlite://relative/path", "memcached://x", "postgresql://"):
        with pytest.raises(ValueError, match="expected"):
            open_records(bad, default_path=tmp_path)


def _counted(value: str, runs: list[str], *, wait: trio.Event | None = None,
             remember: bool = True) -> Callable[[], Awaitable[tuple[str, bool]]]:
    async def execute() -> tuple[str, bool]:
        runs.append(value)
        if wait is not None:
            await wait.wait()
        return value, remember

    return execute


async def test_a_result_is_replayed_by_another_runner(records: RecordStore) -> None:
    first = IdempotencyCache(records=records, codec=CODEC, ttl=60)
    second = IdempotencyCache(records=records, codec=CODEC, ttl=60)
    runs: list[str] = []
    scope = _key()[:2]
    assert await first.run(scope, "k", "fp", _counted("one", runs), deadline=5) == "one"
    assert await second.run(scope, "k", "fp", _counted("two", runs), deadline=5) == "one"
    assert (runs, second.replays) == (["one"], 1)
    with pytest.raises(KeyReused):
        await second.run(scope, "k", "other-fp", _counted("three", runs), deadline=5)


async def test_a_duplicate_waits_for_the_run_on_another_runner(records: RecordStore) -> None:
    first = IdempotencyCache(records=records, codec=CODEC, ttl=60)
    second = IdempotencyCache(records=records, codec=CODEC, ttl=60)
    runs: list[str] = []
    release = trio.Event()
    scope = _key()[:2]
    results: list[str] = []
    async with trio.open_nursery() as nursery:
        async def lead() -> None:
            results.append(await first.run(scope, "k", "fp", _counted("one", runs, wait=release), deadline=5))

        nursery.start_soon(lead)
        await trio.sleep(0.1)  # the lead has claimed the key and runs
        assert runs == ["one"]
        with pytest.raises(KeyInProgress):  # its own deadline passes first
            await second.run(scope, "k", "fp", _counted("two", runs), deadline=0.1)

        async def follow() -> None:
            results.append(await second.run(scope, "k", "fp", _counted("two", runs), deadline=5))

        nursery.start_soon(follow)
        await trio.sleep(0.1)
        release.set()
    assert (runs, results) == (["one"], ["one", "one"])


async def test_an_unremembered_answer_releases_the_key(records: RecordStore) -> None:
    first = IdempotencyCache(records=records, codec=CODEC, ttl=60)
    second = IdempotencyCache(records=records, codec=CODEC, ttl=60)
    runs: list[str] = []
    scope = _key()[:2]
    assert await first.run(scope, "k", "fp", _counted("overloaded", runs, remember=False), deadline=5) == "overloaded"
    assert await second.run(scope, "k", "fp", _counted("two", runs), deadline=5) == "two"
    assert runs == ["overloaded", "two"]


async def test_a_claim_past_its_lease_is_abandoned_never_run_again(records: RecordStore) -> None:
    scope = _key()[:2]
    # A runner claimed the key and died: its claim stays, with a lease that has passed.
    assert await records.claim((*scope, "k"), "fp", "dead-runner", lease_until=0.0, ttl=60) == Claimed()
    runs: list[str] = []
    cache = IdempotencyCache(records=records, codec=CODEC, ttl=60)
    with pytest.raises(KeyAbandoned):
        await cache.run(scope, "k", "fp", _counted("again", runs), deadline=5)
    assert runs == []


async def test_a_run_that_raised_keeps_its_claim(records: RecordStore) -> None:
    cache = IdempotencyCache(records=records, codec=CODEC, ttl=60, claim_margin=0.2)
    scope = _key()[:2]

    async def boom() -> tuple[str, bool]:
        raise RuntimeError("runner bug mid-run")

    with pytest.raises(RuntimeError):
        await cache.run(scope, "k", "fp", boom, deadline=0.1)
    runs: list[str] = []
    with pytest.raises(KeyInProgress):  # the claim's lease (deadline + margin) still runs
        await cache.run(scope, "k", "fp", _counted("again", runs), deadline=0.1)
    await trio.sleep(0.3)
    with pytest.raises(KeyAbandoned):
        await cache.run(scope, "k", "fp", _counted("again", runs), deadline=0.1)
    assert runs == []


async def test_redis_down_fails_clearly_and_resumes() -> None:
    with running_redis() as server:
        records = RedisRecords(server.url, socket_timeout=0.5)
        cache = IdempotencyCache(records=records, codec=CODEC, ttl=60)
        runs: list[str] = []
        scope = _key()[:2]
        try:
            assert await cache.run(scope, "before", "fp", _counted("one", runs), deadline=5) == "one"
            server.stop()
            with pytest.raises(StoreUnavailable, match=r"redis://127\.0\.0\.1"):
                await cache.run(scope, "during", "fp", _counted("two", runs), deadline=5)
            assert runs == ["one"], "the guest does not run without its claim"
            assert await cache.run(scope, "before", "fp", _counted("x", runs), deadline=5) == "one", "memo"
            server.start()
            assert await cache.run(scope, "during", "fp", _counted("three", runs), deadline=5) == "three"
            assert runs == ["one", "three"]
        finally:
            await records.aclose()


async def test_postgres_one_claim_wins_across_runners(postgres_url: str) -> None:
    # Six runners (each its own pool) claim one key at once: exactly one owns it, the others see its claim.
    runners = [PostgresRecords(postgres_url) for _ in range(6)]
    key = _key()
    answers: dict[str, Claimed | Held | Done] = {}

    async def claim(n: int) -> None:
        answers[f"r{n}"] = await runners[n].claim(key, "fp", f"r{n}", lease_until=9e9, ttl=60)

    try:
        async with trio.open_nursery() as nursery:
            for n in range(len(runners)):
                nursery.start_soon(claim, n)
        [winner] = [owner for owner, answer in answers.items() if answer == Claimed()]
        assert all(answer == Held("fp", winner, 9e9) for owner, answer in answers.items() if owner != winner)
    finally:
        for runner in runners:
            await runner.aclose()


async def test_postgres_unreachable_is_store_unavailable(postgres_server: PostgresServer) -> None:
    store = PostgresRecords(postgres_server.url("no_such_database"), connect_timeout=1)
    with pytest.raises(StoreUnavailable) as caught:
        await store.claim(_key(), "fp", "a", lease_until=9e9, ttl=60)
    assert "no_such_database" in str(caught.value)
    await store.aclose()


async def test_postgres_a_statement_stuck_behind_a_lock_ends_as_store_unavailable(postgres_url: str) -> None:
    store = PostgresRecords(postgres_url, statement_timeout_s=0.3)
    key = _key()
    try:
        assert await store.claim(key, "fp", "a", lease_until=9e9, ttl=60) == Claimed()
        with psycopg.connect(postgres_url) as stuck:
            stuck.execute("LOCK TABLE idempotency IN ACCESS EXCLUSIVE MODE")
            with trio.fail_after(10), pytest.raises(StoreUnavailable, match="QueryCanceled"):
                await store.get(key)
            stuck.rollback()
        assert await store.get(key) == Held("fp", "a", 9e9)
    finally:
        await store.aclose()
