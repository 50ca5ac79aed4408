from __future__ import annotations

import base64
import concurrent.futures
import multiprocessing
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import psycopg
import pytest
import trio

from runner_trio.capabilities import HostCallError
from runner_trio.capabilities.storage import (
    Entry,
    HttpStorage,
    PostgresStorage,
    SqliteStorage,
    StorageBackend,
    StorageConfigError,
    StorageLimits,
    WitStorageAdapter,
    open_storage,
)
from runner_trio.engine import HostScope

from ._pg_writer import increment_in_runner
from ._servers import Req, Resp, Server
from ._storage_api import AUTH_KEY, storage_api

Serve = Callable[..., Awaitable[Server]]

LIMITS = StorageLimits(
    max_key_chars=16,
    max_namespace_chars=12,
    max_value_bytes=64,
    max_namespaces=3,
    max_keys_per_namespace=8,
    max_total_bytes=300,
    page_size=3,
)


def install(install_id: str = "inst-a", tenant: str = "tenant-1") -> HostScope:
    return HostScope(tenant, "ext-1", install_id=install_id, request_id="req-1", deadline=trio.current_time() + 30)


@pytest.fixture(params=["sqlite", "http", "postgresql"])
def storage_database(request: pytest.FixtureRequest) -> str | None:
    """A fresh PostgreSQL database for the ``postgresql`` runs (fixtures that need one are sync: taken here)."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return None


@pytest.fixture
async def store(
    request: pytest.FixtureRequest, storage_database: str | None, tmp_path: Path, serve: Serve
) -> AsyncIterator[StorageBackend]:
    sqlite = SqliteStorage(tmp_path / "storage.sqlite3", limits=LIMITS)
    backend: StorageBackend = sqlite
    if storage_database is not None:
        backend = PostgresStorage(storage_database, limits=LIMITS)
    elif request.node.callspec.params["storage_database"] == "http":
        server = await serve(storage_api(sqlite))
        backend = HttpStorage(server.url, AUTH_KEY, limits=LIMITS)
    try:
        yield backend
    finally:
        await backend.aclose()
        await sqlite.aclose()


async def expect(variant: str, call: Awaitable[object]) -> None:
    with pytest.raises(HostCallError) as info:
        await call
    assert info.value.variant == variant


async def test_revisions_start_at_one_and_grow(store: StorageBackend) -> None:
    scope = install()
    await expect("missing", store.get(scope, "ns", "k"))
    first = await store.put(scope, "ns", "k", b"v1")
    assert (first.revision, first.value) == (1, b"v1")
    second = await store.put(scope, "ns", "k", b"\x00\xffbinary")
    assert second.revision == 2
    got = await store.get(scope, "ns", "k")
    assert (got.namespace, got.key, got.value, got.revision) == ("ns", "k", b"\x00\xffbinary", 2)


async def test_compare_and_swap(store: StorageBackend) -> None:
    scope = install()
    await store.put(scope, "ns", "k", b"a")
    assert (await store.put(scope, "ns", "k", b"b", if_revision=1)).revision == 2
    await expect("conflict", store.put(scope, "ns", "k", b"c", if_revision=1))
    await expect("conflict", store.put(scope, "ns", "k", b"c", if_revision=0))  # 0 = only if absent
    await expect("conflict", store.put(scope, "ns", "new", b"x", if_revision=3))  # a revision for a missing key
    assert (await store.put(scope, "ns", "new", b"x", if_revision=0)).revision == 1
    assert (await store.get(scope, "ns", "k")).value == b"b"


async def test_delete(store: StorageBackend) -> None:
    scope = install()
    await store.put(scope, "ns", "k", b"a")
    await store.delete(scope, "ns", "k")
    await expect("missing", store.get(scope, "ns", "k"))
    await expect("missing", store.delete(scope, "ns", "k"))
    assert (await store.put(scope, "ns", "k", b"again")).revision == 1  # a new record starts over


@pytest.mark.parametrize(
    ("namespace", "key"),
    [("ns", ""), ("ns", "k" * 17), ("ns", "a/b"), ("ns", "tab\there"), ("", "k"), ("n" * 13, "k"), ("a/b", "k")],
)
async def test_bad_names_are_denied(store: StorageBackend, namespace: str, key: str) -> None:
    scope = install()
    await expect("denied", store.put(scope, namespace, key, b"v"))
    await expect("denied", store.get(scope, namespace, key))


async def test_value_size_limit(store: StorageBackend) -> None:
    scope = install()
    await store.put(scope, "ns", "k", b"x" * 64)
    await expect("denied", store.put(scope, "ns", "k", b"x" * 65))
    assert len((await store.get(scope, "ns", "k")).value) == 64


async def test_namespace_and_key_quotas(store: StorageBackend) -> None:
    scope = install()
    for namespace in ("n1", "n2", "n3"):
        await store.put(scope, namespace, "k", b"v")
    await expect("denied", store.put(scope, "n4", "k", b"v"))
    for index in range(2, 9):
        await store.put(scope, "n1", f"k{index}", b"v")
    await expect("denied", store.put(scope, "n1", "k9", b"v"))
    assert (await store.put(scope, "n1", "k8", b"overwrite")).revision == 2  # an existing key needs no room
    await store.delete(scope, "n3", "k")  # frees the namespace
    await store.put(scope, "n4", "k", b"v")
    await store.delete(scope, "n1", "k2")
    await store.put(scope, "n1", "k9", b"v")


async def test_total_bytes_quota(store: StorageBackend) -> None:
    scope = install()
    for index in range(4):  # 4 * (2 + 64) = 264 bytes of 300
        await store.put(scope, "big", f"k{index}", b"x" * 64)
    await expect("denied", store.put(scope, "other", "kk", b"y" * 40))
    await store.put(scope, "other", "kk", b"y" * 30)  # 264 + 32 fits
    await expect("denied", store.put(scope, "other", "kk", b"y" * 40))  # growth is what counts
    await store.put(scope, "big", "k0", b"")  # shrinking frees room
    await store.put(scope, "other", "kk", b"y" * 64)


async def test_installs_and_tenants_are_isolated(store: StorageBackend) -> None:
    a, b, other_tenant = install("inst-a"), install("inst-b"), install("inst-a", tenant="tenant-2")
    await store.put(a, "ns", "k", b"secret-of-a")
    for scope in (b, other_tenant):
        await expect("missing", store.get(scope, "ns", "k"))
        assert await store.list_entries(scope, "ns") == ([], None)
        await expect("missing", store.delete(scope, "ns", "k"))
        assert (await store.put(scope, "ns", "k", b"mine")).revision == 1
    assert (await store.get(a, "ns", "k")).value == b"secret-of-a"
    for index in range(2):  # quotas are per install: b fills its 3 namespaces, a still has room
        await store.put(b, f"b{index}", "k", b"v")
    await store.put(a, "a2", "k", b"v")


async def test_list_pages_in_key_order(store: StorageBackend) -> None:
    scope = install()
    keys = ["m", "b", "z", "a", "k", "c", "y"]
    for key in keys:
        await store.put(scope, "ns", key, key.encode())
    await store.put(scope, "other", "a0", b"elsewhere")
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        entries, cursor = await store.list_entries(scope, "ns", cursor)
        pages += 1
        assert len(entries) <= 3
        assert all(entry.value == entry.key.encode() and entry.revision == 1 for entry in entries)
        seen.extend(entry.key for entry in entries)
        if cursor is None:
            break
        assert cursor == entries[-1].key
    assert seen == sorted(keys)
    assert pages == 3
    page, _ = await store.list_entries(scope, "ns", "k", limit=2)
    assert [entry.key for entry in page] == ["m", "y"]
    assert await store.list_entries(scope, "empty") == ([], None)


async def test_concurrent_compare_and_swap_has_one_winner_per_revision(store: StorageBackend) -> None:
    scope = install()
    await store.put(scope, "ns", "counter", b"0")
    outcomes: list[str] = []

    async def race() -> None:
        try:
            await store.put(scope, "ns", "counter", b"raced", if_revision=1)
            outcomes.append("won")
        except HostCallError as exc:
            outcomes.append(exc.variant)

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(race)
    assert sorted(outcomes) == ["conflict"] * 19 + ["won"]

    winners: list[int] = []
    conflicts: list[str] = []

    async def increment(worker: int) -> None:
        while True:  # read-modify-write with CAS until this worker's write lands
            current = await store.get(scope, "ns", "counter")
            try:
                stored = await store.put(scope, "ns", "counter", f"{worker}".encode(), if_revision=current.revision)
            except HostCallError as exc:
                conflicts.append(exc.variant)
                continue
            winners.append(stored.revision)
            return

    async with trio.open_nursery() as nursery:
        for worker in range(20):
            nursery.start_soon(increment, worker)
    assert sorted(winners) == list(range(3, 23))
    assert set(conflicts) <= {"conflict"}
    assert (await store.get(scope, "ns", "counter")).revision == 22


async def test_wit_adapter(store: StorageBackend) -> None:
    adapter = WitStorageAdapter(store)
    scope = install()
    stored = await adapter.put(scope, Entry("ns", "k", b"v", 0))  # revision 0: create only
    assert stored.revision == 1
    with pytest.raises(HostCallError):
        await adapter.put(scope, Entry("ns", "k", b"v", 0))
    assert [entry.key for entry in await adapter.list_entries(scope, "ns", None)] == ["k"]
    await adapter.delete(scope, "ns", "k")
    await expect("missing", adapter.get(scope, "ns", "k"))


async def test_without_install_id(tmp_path: Path, serve: Serve) -> None:
    no_install = HostScope("tenant-1", "ext-1", deadline=trio.current_time() + 30)
    sqlite = SqliteStorage(tmp_path / "s.db")
    try:
        await sqlite.put(no_install, "ns", "k", b"local")  # kept under the extension
        await expect("missing", sqlite.get(install("ext-1"), "ns", "k"))  # never mixed with an install's data
        assert (await sqlite.get(no_install, "ns", "k")).value == b"local"
        server = await serve(storage_api(sqlite))
        http = HttpStorage(server.url, AUTH_KEY)
        await expect("denied", http.get(no_install, "ns", "k"))
        assert server.seen == []
        await http.aclose()
    finally:
        await sqlite.aclose()


async def test_sqlite_persists_and_counts_usage(tmp_path: Path) -> None:
    path = tmp_path / "nested.db"
    first = SqliteStorage(path)
    await first.put(install(), "ns", "key", b"12345")
    await first.put(install(), "ns2", "k", b"1")
    assert await first.usage(install()) == (2, 2, 3 + 5 + 1 + 1)
    await first.aclose()
    await expect("internal", first.get(install(), "ns", "key"))  # closed
    second = SqliteStorage(path)
    assert (await second.get(install(), "ns", "key")).value == b"12345"
    await second.aclose()


async def test_http_backend_error_mapping(serve: Serve) -> None:
    answers: dict[str, Resp] = {
        "/api/internal/ext-storage/install/unauthorized": Resp.json(401, {}),
        "/api/internal/ext-storage/install/forbidden": Resp.json(403, {}),
        "/api/internal/ext-storage/install/limited": Resp.json(429, {}),
        "/api/internal/ext-storage/install/broken": Resp.json(500, {}),
        "/api/internal/ext-storage/install/redirect": Resp(302, [("location", "/elsewhere")]),
        "/api/internal/ext-storage/install/garbage": Resp(200, [], b"not json"),
        "/api/internal/ext-storage/install/no-revision": Resp.json(200, {"namespace": "ns", "key": "k"}),
        "/api/internal/ext-storage/install/bad-b64": Resp.json(
            200, {"key": "k", "revision": 1, "value": "***", "metadata": {"encoding": "base64-bytes"}}
        ),
        "/api/internal/ext-storage/install/json-value": Resp.json(200, {"key": "k", "revision": 4, "value": {"a": 1}}),
        "/api/internal/ext-storage/install/text-value": Resp.json(200, {"key": "k", "revision": 4, "value": "héllo"}),
    }

    async def handle(request: Req) -> Resp:
        return answers[request.path]

    server = await serve(handle)
    http = HttpStorage(server.url + "/", "key")
    for install_id, variant in [
        ("unauthorized", "denied"),
        ("forbidden", "denied"),
        ("limited", "denied"),
        ("broken", "internal"),
        ("redirect", "internal"),
        ("garbage", "internal"),
        ("bad-b64", "internal"),
    ]:
        await expect(variant, http.get(install(install_id), "ns", "k"))
    await expect("internal", http.put(install("no-revision"), "ns", "k", b"v"))
    assert (await http.get(install("json-value"), "ns", "k")).value == b'{"a":1}'
    assert (await http.get(install("text-value"), "ns", "k")).value == "héllo".encode()
    assert server.seen[0].header("x-runner-auth") == "key"
    assert server.seen[0].header("x-alga-tenant") == "tenant-1"
    await http.aclose()

    unreachable = HttpStorage("http://127.0.0.1:1", "key")
    await expect("internal", unreachable.get(install(), "ns", "k"))
    await unreachable.aclose()


async def test_http_backend_sends_the_reference_wire_shape(serve: Serve) -> None:
    async def handle(request: Req) -> Resp:
        return Resp.json(200, {"namespace": "ns", "key": "k", "revision": 7})

    server = await serve(handle)
    http = HttpStorage(server.url, "key")
    await http.put(install("inst/../x"), "ns", "k", b"\x01\x02", if_revision=6)
    request = server.seen[0]
    assert request.path == "/api/internal/ext-storage/install/inst%2F%2E%2E%2Fx"
    assert request.json() == {
        "operation": "put",
        "namespace": "ns",
        "key": "k",
        "value": base64.b64encode(b"\x01\x02").decode(),
        "metadata": {"encoding": "base64-bytes"},
        "ifRevision": 6,
    }
    await http.aclose()


def test_open_storage(tmp_path: Path) -> None:
    assert isinstance(open_storage(f"sqlite:///{tmp_path}/x.db"), SqliteStorage)
    assert isinstance(open_storage("https://platform.example/", auth_key="k"), HttpStorage)
    assert isinstance(open_storage("postgresql://runner@db.internal:5432/ext"), PostgresStorage)
    assert isinstance(open_storage("postgres://runner@db.internal/ext"), PostgresStorage)
    for url in ("sqlite:///", "sqlite:///:memory:", "postgresql://", "mysql://db/x", "/just/a/path"):
        with pytest.raises(StorageConfigError):
            open_storage(url)


async def test_postgres_persists_counts_usage_and_migrates_once(postgres_url: str) -> None:
    first = PostgresStorage(postgres_url)
    await first.put(install(), "ns", "key", b"12345")
    await first.put(install(), "ns2", "k", b"1")
    assert await first.usage(install()) == (2, 2, 3 + 5 + 1 + 1)
    await first.aclose()
    await expect("internal", first.get(install(), "ns", "key"))  # closed
    second = PostgresStorage(postgres_url)  # another runner: the schema is there, the data too
    assert (await second.get(install(), "ns", "key")).value == b"12345"
    await second.aclose()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT version FROM ext_storage_migrations").fetchall() == [(1,)]


def test_postgres_compare_and_swap_across_runner_processes(postgres_url: str) -> None:
    # Two runner processes (each its own pool, three writers in worker threads) race read-modify-write cycles
    # on one key with revisions: every increment lands exactly once, no revision is handed out twice or skipped.
    async def seed() -> None:
        store = PostgresStorage(postgres_url)
        await store.put(install(), "ns", "counter", b"0")
        await store.aclose()

    trio.run(seed)
    runners, writers, rounds = 2, 3, 8
    with concurrent.futures.ProcessPoolExecutor(runners, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(increment_in_runner, [postgres_url] * runners, [writers] * runners,
                                [rounds] * runners))
    workers = runners * writers
    assert all(len(landed) == writers * rounds for landed in results)  # each process really wrote
    revisions = sorted(revision for landed in results for revision in landed)
    assert revisions == list(range(2, 2 + workers * rounds))

    async def final() -> Entry:
        store = PostgresStorage(postgres_url)
        try:
            return await store.get(install(), "ns", "counter")
        finally:
            await store.aclose()

    entry = trio.run(final)
    assert (entry.value, entry.revision) == (str(workers * rounds).encode(), 1 + workers * rounds)


async def test_postgres_quota_holds_under_concurrent_writers(postgres_url: str) -> None:
    # Two runners (two pools) each try to create keys past max_keys_per_namespace at once: the count stays
    # exactly at the quota, as the check and the write happen under the install's lock.
    runners = [PostgresStorage(postgres_url, limits=LIMITS) for _ in range(2)]
    outcomes: list[str] = []

    async def create(n: int) -> None:
        try:
            await runners[n % 2].put(install(), "ns", f"k{n}", b"v")
            outcomes.append("ok")
        except HostCallError as exc:
            outcomes.append(exc.variant)

    try:
        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(create, n)
        assert sorted(outcomes) == ["denied"] * 12 + ["ok"] * LIMITS.max_keys_per_namespace
        assert (await runners[0].usage(install()))[1] == LIMITS.max_keys_per_namespace
    finally:
        for runner in runners:
            await runner.aclose()


async def test_postgres_a_statement_stuck_behind_a_lock_ends_as_an_internal_error(postgres_url: str) -> None:
    # Another client locks the table and hangs: the guest's call waits at most the statement timeout, then fails
    # as `internal` (the guest gets an error to handle, the runner's worker thread and connection come back).
    store = PostgresStorage(postgres_url, statement_timeout_s=0.3)
    try:
        await store.put(install(), "ns", "key", b"1")
        with psycopg.connect(postgres_url) as stuck:
            stuck.execute("LOCK TABLE ext_storage IN ACCESS EXCLUSIVE MODE")
            with trio.fail_after(10), pytest.raises(HostCallError) as info:
                await store.get(install(), "ns", "key")
            assert info.value.variant == "internal"
            assert "storage database error: QueryCanceled" in str(info.value), "no address, no SQL"
            stuck.rollback()
        assert (await store.get(install(), "ns", "key")).value == b"1"
    finally:
        await store.aclose()
