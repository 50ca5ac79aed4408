"""A whole gateway for each test: SQLite registry, file bundle store, fake runners, served over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import trio

import sealing
from gateway_quart import Settings, create_app
from gateway_quart.registry import SqlRegistry, open_registry

from ._helpers import FakeRunner, Server, manifest, publish, start_runner, start_server

ADMIN_TOKEN = "admin-token-0123456789abcdef"
SERVICE_TOKEN = "service-token-0123456789"
UI_KEY = "ui-signing-key-0123456789"
"""EXT_UI_SIGNING_KEY of the test gateways (a runner verifies their /ext-ui URLs with it)."""


@dataclass
class Tenant:
    id: str
    token: str
    user_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


@dataclass
class Gateway:
    url: str
    client: httpx.AsyncClient
    settings: Settings
    runner: FakeRunner
    runner_server: Server
    store_dir: Path
    tmp: Path
    private_key: str
    bundles: dict[str, str] = field(default_factory=dict)

    admin: ClassVar[dict[str, str]] = {"authorization": f"Bearer {ADMIN_TOKEN}"}

    async def admin_post(self, path: str, body: Any, *, expect: int | None = None) -> Any:
        resp = await self.client.post(path, json=body, headers=self.admin)
        if expect is not None:
            assert resp.status_code == expect, resp.text
        return resp.json() if resp.content else None

    async def admin_put(self, path: str, body: Any, *, expect: int | None = None) -> Any:
        resp = await self.client.put(path, json=body, headers=self.admin)
        if expect is not None:
            assert resp.status_code == expect, resp.text
        return resp.json() if resp.content else None

    async def publish(self, name: str, *, signed: bool = False, **overrides: Any) -> str:
        content_hash = await publish(self.store_dir, self.tmp / f"tree-{name}", manifest(**overrides), signed=signed)
        self.bundles[name] = content_hash
        return content_hash

    async def tenant(self, tenant_id: str, *, roles: list[str] | None = None, email: str = "ann@example.com") -> Tenant:
        await self.admin_post("/api/v1/tenants", {"id": tenant_id, "name": tenant_id.title()}, expect=201)
        return await self.user(tenant_id, roles=roles or ["member"], email=email)

    async def user(self, tenant_id: str, *, roles: list[str], email: str) -> Tenant:
        user = await self.admin_post(f"/api/v1/tenants/{tenant_id}/users",
                                     {"email": email, "name": "Ann", "roles": roles}, expect=201)
        token = await self.admin_post(f"/api/v1/users/{user['id']}/tokens", {"name": "t"}, expect=201)
        return Tenant(tenant_id, token["token"], user["id"])

    async def register(self, content_hash: str, extension_id: str = "echo") -> Any:
        return await self.admin_post("/api/v1/extensions", {"content_hash": content_hash, "extension_id": extension_id})

    async def install(self, tenant_id: str, extension_id: str = "echo", **body: Any) -> Any:
        return await self.admin_post(f"/api/v1/tenants/{tenant_id}/installs",
                                     {"extension_id": extension_id, **body}, expect=201)


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """``REGISTRY_DATABASE`` of each backend: a SQLite file in a new directory, a fresh PostgreSQL database.

    A test asking for it (or for ``registry``) runs once on each backend.
    """
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return str(tmp_path / "nested" / "registry.sqlite3")


@pytest.fixture
async def registry(registry_database: str) -> AsyncIterator[SqlRegistry]:
    """The registry of ``registry_database``, opened (migrated) and closed after the test."""
    opened = await open_registry(registry_database)
    assert isinstance(opened, SqlRegistry)
    yield opened
    await opened.aclose()


@pytest.fixture
async def make_gateway(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """``await make_gateway(**settings_overrides)`` -> a served gateway in front of one fake runner."""
    clients: list[httpx.AsyncClient] = []
    servers: list[Server] = []
    counter = 0

    async def factory(runner: FakeRunner | None = None, runner_urls: tuple[str, ...] | None = None,
                      **overrides: Any) -> Gateway:
        nonlocal counter
        counter += 1
        root = tmp_path / f"gw{counter}"
        store_dir = root / "store"
        store_dir.mkdir(parents=True)
        runner = runner or FakeRunner()
        runner_server = await start_runner(nursery, runner)
        private_key, public_key = sealing.generate_keypair()
        settings = Settings(
            runner_base_urls=runner_urls or (runner_server.url,),
            registry_database=str(root / "registry.sqlite3"),
            bundle_store_base=f"file://{store_dir}",
            admin_token=ADMIN_TOKEN,
            runner_service_token=SERVICE_TOKEN,
            runner_secrets_public_key=public_key,
            runner_public_base="https://runner.example.test",
            ui_signing_key=UI_KEY,
            timeout_ms=5000,
        )
        settings = replace(settings, **overrides)
        server = await start_server(nursery, create_app(settings))
        servers[:0] = [server, runner_server]  # gateways stop first: their runner clients close cleanly
        client = httpx.AsyncClient(base_url=server.url, timeout=10)
        clients.append(client)
        return Gateway(server.url, client, settings, runner, runner_server, store_dir, root, private_key)

    yield factory
    for client in clients:
        await client.aclose()
    with trio.fail_after(10):
        for server in servers:
            await server.close()


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> Gateway:
    return await make_gateway()


@pytest.fixture
async def installed(gateway: Gateway) -> tuple[Gateway, Tenant]:
    """A gateway with tenant ``acme`` (a member user) and the echo extension installed with two grants."""
    content_hash = await gateway.publish("v1")
    await gateway.register(content_hash)
    tenant = await gateway.tenant("acme")
    await gateway.install("acme", granted_capabilities=["cap:http.fetch", "cap:secrets.get"],
                          config={"GREETING": "hello"})
    return gateway, tenant
