"""A fleet on loopback: 2 gateways and 3 runners (real processes) over moto's S3 server, a redis-server and
PostgreSQL, configured as docs/deployment.md describes.

Installed once through one gateway, called through both; a token revoked on one gateway is refused by both at
once (the revocation generation in Redis, with a 300 s auth cache); one compile per bundle across the fleet (the
precompiled artifact is shared through the store); a runner killed under a keyed load and a fourth one added on
an address the gateways already list: every keyed request that did not run on the killed runner succeeds, the
new runner is found by the gateways' health checks, gets calls and loads the shared artifact without compiling.
"""

from __future__ import annotations

import json
import secrets
import uuid
from pathlib import Path

import httpx
import pytest
import trio

from bundles import pack_directory, publish_bundle
from bundles.store import open_store
from tests._moto import create_bucket, enable_iam_auth, list_keys, moto_server
from tests._net import free_port
from tests._postgres import PostgresServer
from tests._redis import RedisServer
from tests.guests.wat import load_wat

from ._procs import Service, gateway_env, runner_env, start_service

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

BUCKET = "fleet"
KEYED_CALLS = 48
CONCURRENCY = 6
PRECOMPILE_KEY = "fleet-precompile-key-0123456789abcdef"


def _echo_bundle(tmp: Path) -> bytes:
    src = tmp / "echo-src"
    (src / "dist").mkdir(parents=True)
    (src / "dist" / "main.wasm").write_bytes(load_wat("echo"))
    (src / "manifest.json").write_text(json.dumps({
        "name": "com.example.echo", "publisher": "tests", "version": "1.0.0", "runtime": "wasm-js@1",
        "capabilities": [], "api": {"endpoints": [{"method": "POST", "path": "/echo", "handler": "echo"},
                                                  {"method": "GET", "path": "/echo", "handler": "echo"}]},
    }))
    return pack_directory(src)


async def _metric(client: httpx.AsyncClient, url: str, name: str) -> float:
    text = (await client.get(f"{url}/metrics")).text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


async def test_a_fleet_shares_state_survives_a_killed_runner_and_takes_a_new_one(
    redis_server: RedisServer, postgres_server: PostgresServer, tmp_path: Path,
) -> None:
    service_token, admin_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    with moto_server() as s3_url:
        credentials = await trio.to_thread.run_sync(enable_iam_auth, s3_url)
        await trio.to_thread.run_sync(lambda: create_bucket(s3_url, BUCKET, credentials=credentials))
        s3 = {"STORAGE_S3_ENDPOINT": s3_url, "STORAGE_S3_ACCESS_KEY": credentials.access_key,
              "STORAGE_S3_SECRET_KEY": credentials.secret_key, "STORAGE_S3_REGION": "us-east-1",
              "STORAGE_S3_FORCE_PATH_STYLE": "true"}
        store_uri = f"s3://{BUCKET}/bundles"
        store = open_store(store_uri, env=s3)
        try:
            digest = await publish_bundle(store, await trio.to_thread.run_sync(_echo_bundle, tmp_path))
        finally:
            await store.aclose()
        registry = await trio.to_thread.run_sync(postgres_server.create_database)
        storage = await trio.to_thread.run_sync(postgres_server.create_database)
        redis_url = redis_server.url

        def runner(name: str, bind: str = "127.0.0.1:0") -> dict[str, str]:
            return runner_env(var_dir=tmp_path / name, store_uri=store_uri, cache_root=tmp_path / f"cache-{name}",
                              service_token=service_token, RUNNER_BIND=bind, RUNNER_WORKERS="1",
                              RUNNER_PRECOMPILE_KEY=PRECOMPILE_KEY, RUNNER_IDEMPOTENCY_URL=f"{redis_url}/1",
                              RUNNER_STORAGE_URL=storage, **s3)

        services: list[Service] = []
        try:
            async def start(name: str, module: str, env: dict[str, str]) -> None:
                services.append(await start_service(name, module, env, tmp_path / f"{name}.log"))

            async with trio.open_nursery() as nursery:
                for name in ("runner-a", "runner-b", "runner-c"):
                    nursery.start_soon(start, name, "runner_trio", runner(name))
            runners = sorted(services, key=lambda s: s.name)
            spare_bind = f"127.0.0.1:{free_port()}"  # runner-d joins later, on an address already listed
            runner_urls = [r.url for r in runners] + [f"http://{spare_bind}"]
            for name in ("gateway-1", "gateway-2"):
                await start(name, "gateway_quart", gateway_env(
                    runner_urls=runner_urls, registry=registry, store_uri=store_uri,  # type: ignore[arg-type]
                    service_token=service_token, admin_token=admin_token, GATEWAY_REDIS_URL=redis_url,
                    GATEWAY_AUTH_CACHE_TTL_S="300", GATEWAY_RUNNER_HEALTH_INTERVAL_S="0.5",
                    GATEWAY_RATE_LIMIT_RPS="10000", GATEWAY_RATE_LIMIT_BURST="10000",
                    EXT_GATEWAY_TIMEOUT_MS="20000", **s3))
            gateways = [s for s in services if s.name.startswith("gateway")]
            admin = {"authorization": f"Bearer {admin_token}"}

            async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
                first = gateways[0].url

                async def post(path: str, body: object) -> dict[str, str]:
                    response = await client.post(f"{first}{path}", json=body, headers=admin)
                    assert response.status_code in (200, 201), response.text
                    return dict(response.json())

                # Installed once, through one gateway (one PostgreSQL registry).
                await post("/api/v1/extensions", {"content_hash": digest, "extension_id": "echo"})
                await post("/api/v1/tenants", {"id": "acme", "name": "Acme"})
                user = await post("/api/v1/tenants/acme/users",
                                  {"email": "a@acme.test", "name": "A", "roles": ["member"]})
                token = await post(f"/api/v1/users/{user['id']}/tokens", {"name": "t"})
                doomed = await post(f"/api/v1/users/{user['id']}/tokens", {"name": "doomed"})
                await post("/api/v1/tenants/acme/installs", {"extension_id": "echo"})
                auth = {"authorization": f"Bearer {token['token']}"}

                # The first call compiles once and shares the artifact through the store.
                response = await client.get(f"{first}/api/ext/echo/echo", headers=auth)
                assert response.status_code == 200, response.text
                with trio.fail_after(60):
                    while not any("precompiled" in key or "artifact" in key  # noqa: ASYNC110 - S3 has no events
                                  for key in await trio.to_thread.run_sync(
                                      lambda: list_keys(s3_url, BUCKET, credentials=credentials))):
                        await trio.sleep(0.1)
                # Then both gateways spread calls over the three runners.
                for i in range(12):
                    gateway = gateways[i % 2]
                    response = await client.get(f"{gateway.url}/api/ext/echo/echo?i={i}", headers=auth)
                    assert response.status_code == 200, (gateway.name, response.text)
                served = [await _metric(client, r.url, "runner_invocations_total") for r in runners]
                assert all(count > 0 for count in served), served
                compiles = [await _metric(client, r.url, "runner_component_compiles_total") for r in runners]
                assert sum(compiles) == 1, f"one compile across the fleet, not {compiles}"

                # A token revoked through one gateway is refused by both at once (a 300 s auth cache).
                doomed_auth = {"authorization": f"Bearer {doomed['token']}"}
                for gateway in gateways:
                    assert (await client.get(f"{gateway.url}/api/ext/echo/echo", headers=doomed_auth)).status_code \
                        == 200
                revoked = await client.delete(f"{gateways[1].url}/api/v1/tokens/{doomed['id']}", headers=admin)
                assert revoked.status_code in (200, 204), revoked.text
                for gateway in gateways:
                    refused = await client.get(f"{gateway.url}/api/ext/echo/echo", headers=doomed_auth)
                    assert refused.status_code == 401, (gateway.name, refused.text)

                # Keyed load; runner-a is killed a third of the way in, runner-d joins at two thirds.
                results: dict[int, int] = {}
                started_after_kill: set[int] = set()
                killed = trio.Event()
                counter = iter(range(KEYED_CALLS))

                async def worker(n: int) -> None:
                    async with httpx.AsyncClient(timeout=60, trust_env=False) as own:
                        for i in counter:
                            if killed.is_set():
                                started_after_kill.add(i)
                            gateway = gateways[(n + i) % 2]
                            response = await own.post(f"{gateway.url}/api/ext/echo/echo", content=f"call {i}",
                                                      headers={**auth, "idempotency-key": str(uuid.uuid4())})
                            results[i] = response.status_code
                            if len(results) == KEYED_CALLS // 3 and not killed.is_set():
                                runners[0].process.kill()
                                await runners[0].process.wait()
                                killed.set()

                async with trio.open_nursery() as load:
                    for n in range(CONCURRENCY):
                        load.start_soon(worker, n)
                    await killed.wait()
                    await start("runner-d", "runner_trio", runner("runner-d", spare_bind))
                failed = {i: status for i, status in results.items() if status != 200}
                assert len(results) == KEYED_CALLS
                assert len(failed) <= CONCURRENCY, f"more failures than calls in flight at the kill: {failed}"
                assert not {i for i in failed if i in started_after_kill}, failed

                # runner-d is found by the health checks, serves calls, and loaded the artifact instead of compiling.
                newcomer = services[-1]
                with trio.fail_after(60):
                    while await _metric(client, newcomer.url, "runner_invocations_total") == 0:
                        gateway = gateways[0]
                        response = await client.get(f"{gateway.url}/api/ext/echo/echo", headers=auth)
                        assert response.status_code == 200, response.text
                        await trio.sleep(0.05)
                assert await _metric(client, newcomer.url, "runner_component_compiles_total") == 0
        finally:
            for service in reversed(services):
                await service.stop()
