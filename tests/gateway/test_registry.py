"""The registry on both backends (a SQLite file, a real PostgreSQL server): migrations, records, conflicts,
install updates, concurrency. The shared tests take the ``registry`` fixture, run once per backend."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
import trio

from gateway_quart import RecordConflict, RecordNotFound, RegistryError
from gateway_quart.registry import (
    MIGRATIONS,
    POSTGRES_MIGRATIONS,
    UNSET,
    PostgresRegistry,
    Registry,
    SealedSecrets,
    SqliteRegistry,
    SqlRegistry,
    open_registry,
)
from gateway_quart.registry import _postgres as pg_backend
from gateway_quart.registry import _sqlite as sqlite_backend
from gateway_quart.registry._migrations import MIGRATION_LOCK_KEY
from tests._postgres import PostgresServer


async def _version(registry: SqlRegistry, content_hash: str = "a" * 64) -> str:
    _, version, _ = await registry.register_version(
        extension_id="echo", name="echo", publisher="Example", version="1.0.0", content_hash=content_hash,
        manifest_json="{}", signature_status="unsigned",
    )
    return version.id


async def test_migrations_are_recorded_once(tmp_path: Path) -> None:
    path = str(tmp_path / "r.sqlite3")
    first = await SqliteRegistry.open(path)
    await first.aclose()
    second = await SqliteRegistry.open(path)  # reopening applies nothing twice
    await second.aclose()
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations").fetchall()
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    assert rows == [(m.version, m.name) for m in MIGRATIONS]
    assert mode == "wal"


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "r.sqlite3")
    await (await SqliteRegistry.open(path)).aclose()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'now')")
    with pytest.raises(RegistryError, match="newer"):
        await SqliteRegistry.open(path)


async def test_tenants_users_tokens(registry: SqlRegistry) -> None:
    await registry.create_tenant("acme", "Acme")
    with pytest.raises(RecordConflict):
        await registry.create_tenant("acme", "Again")
    assert (await registry.ensure_tenant("acme", "ignored")).name == "Acme"
    user = await registry.create_user(tenant_id="acme", email="a@x", name="A", user_type="internal",
                                      roles=["member"], client_name=None, client_id=None)
    with pytest.raises(RecordNotFound):
        await registry.create_user(tenant_id="nope", email="a@x", name="A", user_type="internal", roles=[],
                                   client_name=None, client_id=None)
    token = await registry.create_token(user_id=user.id, token_sha256="f" * 64, name="cli", expires_at=None)
    found = await registry.find_token("f" * 64)
    assert found is not None
    assert found[0] == token
    assert found[1] == user
    assert await registry.find_token("0" * 64) is None
    revoked = await registry.revoke_token(token.id)
    assert revoked.revoked_at is not None
    with pytest.raises(RecordNotFound):
        await registry.revoke_token("missing")


async def test_register_version_is_idempotent_per_hash(registry: SqlRegistry) -> None:
    first = await _version(registry)
    assert await _version(registry) == first
    second = await _version(registry, "b" * 64)
    assert second != first
    assert [v.id for v in await registry.list_versions("echo")] == [first, second]
    with pytest.raises(RecordConflict):
        await registry.register_version(extension_id="echo", name="other", publisher="Example", version="1",
                                        content_hash="c" * 64, manifest_json="{}", signature_status="unsigned")


async def test_install_updates(registry: SqlRegistry) -> None:
    await registry.create_tenant("acme", "Acme")
    v1 = await _version(registry)
    v2 = await _version(registry, "b" * 64)
    install = await registry.create_install(tenant_id="acme", extension_id="echo", version_id=v1,
                                            granted_capabilities=["cap:b", "cap:a"], config={"K": "v"})
    assert install.granted_capabilities == ("cap:a", "cap:b")
    assert install.version.id == v1
    assert install.enabled
    assert install.secrets is None
    with pytest.raises(RecordConflict):
        await registry.create_install(tenant_id="acme", extension_id="echo", version_id=v1,
                                      granted_capabilities=[], config={})
    sealed = SealedSecrets(envelope={"ciphertext_b64": "x"}, keys=("B", "A"), expires_at=None)
    updated = await registry.update_install("acme", "echo", version_id=v2, enabled=False, secrets=sealed)
    assert updated.version.content_hash == "b" * 64
    assert updated.config == {"K": "v"}  # untouched fields stay
    assert updated.secrets == SealedSecrets(envelope={"ciphertext_b64": "x"}, keys=("A", "B"), expires_at=None)
    assert await registry.find_active_install("acme", "echo") is None
    cleared = await registry.update_install("acme", "echo", enabled=True, secrets=None, config=UNSET)
    assert cleared.secrets is None
    assert cleared.enabled
    with pytest.raises(RecordNotFound):
        await registry.update_install("acme", "echo", version_id="not-a-version")
    with pytest.raises(RecordNotFound):
        await registry.update_install("acme", "missing", enabled=True)
    await registry.delete_install("acme", "echo")
    with pytest.raises(RecordNotFound):
        await registry.get_install("acme", "echo")


async def test_audit_rows(registry: SqlRegistry) -> None:
    first = await registry.record_audit(tenant_id="acme", user_id="u", extension_id="echo", method="GET",
                                        path="/a", request_id="r1")
    await registry.record_audit(tenant_id="other", user_id=None, extension_id="echo", method="POST",
                                path="/b", request_id="r2")
    await registry.finish_audit(first, 200)
    [entry] = await registry.list_audit("acme", limit=10)
    assert (entry.method, entry.path, entry.status, entry.request_id) == ("GET", "/a", 200, "r1")


async def test_statuses_ride_along_with_the_next_audit_row(registry: SqlRegistry) -> None:
    first = await registry.record_audit(tenant_id="acme", user_id="u", extension_id="echo", method="GET",
                                        path="/a", request_id="r1")
    second = await registry.record_audit(tenant_id="acme", user_id="u", extension_id="echo", method="GET",
                                         path="/b", request_id="r2", finished=[(first, 200)])
    third = await registry.record_audit(tenant_id="acme", user_id="u", extension_id="echo", method="GET",
                                        path="/c", request_id="r3")
    await registry.finish_audits([(second, 502), (third, 499)])
    entries = await registry.list_audit("acme", limit=10)
    assert [(e.path, e.status) for e in entries] == [("/c", 499), ("/b", 502), ("/a", 200)]


async def test_concurrent_calls_share_the_pool(registry: SqlRegistry) -> None:
    await registry.create_tenant("acme", "Acme")

    async def write(n: int) -> None:
        await registry.record_audit(tenant_id="acme", user_id=None, extension_id="e", method="GET",
                                    path=f"/{n}", request_id=str(n))

    async with trio.open_nursery() as nursery:
        for n in range(50):
            nursery.start_soon(write, n)
    assert len(await registry.list_audit("acme", limit=100)) == 50


async def test_satisfies_the_protocol(registry: SqlRegistry) -> None:
    protocol_user: Registry = registry
    await protocol_user.ping()
    await registry.aclose()
    with pytest.raises(RegistryError, match="closed"):
        await registry.ping()


async def test_the_scheme_picks_the_backend(postgres_url: str, tmp_path: Path) -> None:
    for database, kind in [(postgres_url, PostgresRegistry), (f"sqlite:///{tmp_path}/r.sqlite3", SqliteRegistry),
                           (str(tmp_path / "p.sqlite3"), SqliteRegistry)]:
        opened = await open_registry(database)
        assert isinstance(opened, kind)
        await opened.aclose()
    assert (tmp_path / "r.sqlite3").is_file()  # sqlite:/// names the file, not a directory called "sqlite:"


async def test_postgres_migrations_run_once_across_replicas(postgres_url: str) -> None:
    # Eight "replicas" start at once on an empty database: one migrates, the others find the schema current.
    opened: list[Registry] = []

    async def start() -> None:
        opened.append(await PostgresRegistry.open(postgres_url, pool_size=1))

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(start)
    for registry in opened:
        await registry.aclose()
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    assert rows == [(m.version, m.name) for m in POSTGRES_MIGRATIONS]
    assert [(m.version, m.name) for m in POSTGRES_MIGRATIONS] == [(m.version, m.name) for m in MIGRATIONS]


async def test_postgres_newer_schema_is_refused(postgres_url: str) -> None:
    await (await PostgresRegistry.open(postgres_url)).aclose()
    with psycopg.connect(postgres_url) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'now')")
    with pytest.raises(RegistryError, match="newer"):
        await PostgresRegistry.open(postgres_url)


async def test_postgres_unreachable_is_a_registry_error(postgres_server: PostgresServer) -> None:
    url = postgres_server.url("no_such_database")
    with pytest.raises(RegistryError, match="unavailable") as caught:
        await PostgresRegistry.open(url, connect_timeout_s=2)
    assert "postgresql://" not in str(caught.value)


async def test_concurrent_registrations_from_several_gateways_agree(postgres_url: str) -> None:
    # Two gateway processes (two pools) register the same bundle at once: one version, no conflict error.
    gateways = [await PostgresRegistry.open(postgres_url) for _ in range(2)]
    results: list[tuple[str, bool]] = []

    async def register(registry: PostgresRegistry) -> None:
        _, version, created = await registry.register_version(
            extension_id=None, name="echo", publisher="Example", version="1.0.0", content_hash="d" * 64,
            manifest_json="{}", signature_status="unsigned")
        results.append((version.id, created))

    async with trio.open_nursery() as nursery:
        for n in range(10):
            nursery.start_soon(register, gateways[n % 2])
    for registry in gateways:
        await registry.aclose()
    assert len({version_id for version_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_the_audit_row_waits_in_a_thread_while_another_writer_holds_the_lock(tmp_path: Path) -> None:
    # SQLite writes the row on the event loop's connection, which never waits for the lock: when another
    # connection holds it, the row is written from a worker thread once the lock is free.
    path = str(tmp_path / "r.sqlite3")
    registry = await SqliteRegistry.open(path)
    first = await registry.record_audit(tenant_id="acme", user_id=None, extension_id="e", method="GET",
                                        path="/first", request_id="r1")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    written = trio.Event()

    async def write() -> None:
        await registry.record_audit(tenant_id="acme", user_id=None, extension_id="e", method="GET",
                                    path="/second", request_id="r2", finished=[(first, 200)])
        written.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write)
        await trio.sleep(0.2)
        assert not written.is_set()
        other.execute("COMMIT")
        with trio.fail_after(5):
            await written.wait()
    other.close()
    assert {e.path: e.status for e in await registry.list_audit("acme", limit=10)} == {"/first": 200, "/second": None}
    await registry.aclose()


async def test_writes_on_the_event_loops_connection_are_checkpointed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # That connection never checkpoints itself: every LOOP_CHECKPOINT_EVERY writes a worker thread does, so the
    # rows reach the database file even when nothing else writes.
    monkeypatch.setattr(sqlite_backend, "LOOP_CHECKPOINT_EVERY", 100)
    path = tmp_path / "r.sqlite3"
    registry = await SqliteRegistry.open(str(path))
    await registry._run(sqlite_backend._checkpoint)  # the migrations, into the file
    before = path.stat().st_size

    async def rows(count: int) -> None:
        for n in range(count):
            await registry.record_audit(tenant_id="acme", user_id=None, extension_id="e", method="GET",
                                        path=f"/{n}" * 20, request_id=str(n))

    await rows(99)
    assert path.stat().st_size == before  # all in the WAL so far
    await rows(1)
    assert path.stat().st_size > before
    await registry.aclose()


async def test_a_statement_stuck_behind_a_lock_ends_as_a_registry_error(postgres_url: str) -> None:
    # Another client hangs in the middle of a transaction that inserted the same tenant, or holding the lock of
    # the registry's write steps: a write waits at most the statement timeout, then fails as a registry error
    # (503 registry_unavailable for a caller), and works once the other client is gone.
    registry = await PostgresRegistry.open(postgres_url, statement_timeout_s=0.3)
    try:
        with psycopg.connect(postgres_url) as stuck:
            stuck.execute("INSERT INTO tenants (id, name, created_at) VALUES ('acme', 'Other', 'now')")
            with trio.fail_after(10), pytest.raises(RegistryError, match="QueryCanceled"):
                await registry.create_tenant("acme", "Acme")
            stuck.rollback()
            stuck.execute("SELECT pg_advisory_lock(%s)", (pg_backend.WRITE_LOCK_KEY,))
            with trio.fail_after(10), pytest.raises(RegistryError, match="QueryCanceled"):
                await _version(registry)
            stuck.rollback()
            stuck.execute("SELECT pg_advisory_unlock(%s)", (pg_backend.WRITE_LOCK_KEY,))
        assert (await registry.create_tenant("acme", "Acme")).id == "acme"
    finally:
        await registry.aclose()


async def test_the_migration_is_not_bound_by_the_statement_timeout(postgres_url: str) -> None:
    # A replica waiting for another's migration (its lock) waits as long as that takes.
    with psycopg.connect(postgres_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        async with trio.open_nursery() as nursery:
            opened: list[PostgresRegistry] = []

            async def start() -> None:
                opened.append(await PostgresRegistry.open(postgres_url, statement_timeout_s=0.2))

            nursery.start_soon(start)
            await trio.sleep(0.8)  # four statement timeouts
            assert opened == [], "still waiting for the lock"
            other.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    [registry] = opened
    await registry.aclose()
