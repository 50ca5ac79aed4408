"""Real servers for the ext-ui and host-page tests.

- :func:`start_ui_runner`: a Quart-trio app with the runner's ``/ext-ui`` blueprint over a real ``BundleService``
  (file:// store, ``DiskCache``): the blueprint on its own, for the route tests.
- :func:`start_gateway`: the real gateway (``create_app``) with a SQLite registry and the same file store.

Both run on Hypercorn's trio worker on 127.0.0.1:0.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import trio
from quart_trio import QuartTrio

import bundles
from bundles.store import BundleLayout, FileStore
from cache import ArtifactCache, DiskCache
from gateway_quart import Settings as GatewaySettings
from gateway_quart import create_app
from runner_trio import Settings as RunnerSettings
from runner_trio._bundles import BundleService
from runner_trio._ui_route import InstallValidator, create_ui_blueprint
from tests.gateway._helpers import Server, start_server

COMPONENT = b"\x00asm\x0d\x00\x01\x00"  # the binary of "(component)": enough for the bundle checks
ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
SERVICE_TOKEN = "service-token-0123456789"
UI_KEY = "ui-signing-key-0123456789"
"""EXT_UI_SIGNING_KEY of the gateway and the real runner (as scripts/dev_stack.py sets one key on both)."""


class UnusedCompiler:
    """The UI route never compiles: any call here is a bug in the route."""

    target = "unused"

    def compile(self, data: bytes) -> Any:
        raise AssertionError("the ext-ui route must not compile components")

    def serialize(self, component: Any) -> bytes:
        raise AssertionError("the ext-ui route must not compile components")

    def deserialize_file(self, path: Path) -> Any:
        raise AssertionError("the ext-ui route must not compile components")


@dataclass
class UiRunner:
    url: str
    server: Server
    bundles: BundleService
    disk: DiskCache
    store_dir: Path
    settings: RunnerSettings
    validator: InstallValidator | None

    async def publish(self, tree: Path, *, signature: bytes | None = None) -> str:
        """Pack ``tree`` and publish it to the store; returns the bare hex digest."""
        return await publish_tree(self.store_dir, tree, signature=signature)


async def publish_tree(
    store_dir: Path,
    tree: Path,
    *,
    signature: bytes | None = None,
    layout: BundleLayout | None = None,
    key_context: Mapping[str, str] | None = None,
) -> str:
    data = await trio.to_thread.run_sync(bundles.pack_directory, tree)
    async with FileStore(str(store_dir)) as store:
        content_hash = await bundles.publish_bundle(store, data, signature, layout=layout or BundleLayout(),
                                                    key_context=key_context)
    return bundles.parse_content_hash(content_hash)


def write_tree(root: Path, files: Mapping[str, bytes | str], *, manifest: Mapping[str, Any] | None = None) -> Path:
    """A bundle source directory: manifest.json (``manifest`` overrides keys; ``None`` drops one), dist/main.wasm
    and ``files`` (paths relative to the root)."""
    if root.exists():
        shutil.rmtree(root)
    data: dict[str, Any] = {
        "name": "com.example.ui",
        "publisher": "tests",
        "version": "1.0.0",
        "runtime": "wasm-js@1",
        "capabilities": [],
        "ui": {"type": "iframe", "entry": "ui/index.html"},
        "api": {"endpoints": [{"method": "POST", "path": "/echo", "handler": "handler"}]},
    }
    data.update(manifest or {})
    data = {key: value for key, value in data.items() if value is not None}  # None removes a key
    everything: dict[str, bytes | str] = {"manifest.json": json.dumps(data), "dist/main.wasm": COMPONENT, **files}
    for rel, content in everything.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def stage_sample(sample: str, dest: Path) -> Path:
    """The bundle directory of a built sample: manifest.json, dist/main.wasm and ui/ (no sources, no toolchain)."""
    src = SAMPLES / sample
    wasm = src / "dist" / "main.wasm"
    if not wasm.exists():
        raise FileNotFoundError(f"{sample} is not built: run scripts/build-samples")
    (dest / "dist").mkdir(parents=True)
    shutil.copy(src / "manifest.json", dest / "manifest.json")
    shutil.copy(wasm, dest / "dist" / "main.wasm")
    shutil.copytree(src / "ui", dest / "ui")
    return dest


async def start_ui_runner(
    nursery: trio.Nursery,
    root: Path,
    *,
    store_dir: Path | None = None,
    validator: InstallValidator | None = None,
    trust: bundles.TrustBundle | None = None,
    cache_max_bytes: int = 1 << 30,
    layout: BundleLayout | None = None,
    **settings: Any,
) -> UiRunner:
    """The runner's ``/ext-ui`` blueprint alone over a real ``BundleService``, served."""
    store_dir = store_dir or root / "store"
    store_dir.mkdir(parents=True, exist_ok=True)
    disk = DiskCache(root / "cache", max_bytes=cache_max_bytes)
    await disk.open()
    store = FileStore(str(store_dir))
    service = BundleService(
        store=store,
        disk=disk,
        artifacts=ArtifactCache(disk),
        compiler=UnusedCompiler(),
        policy=bundles.SignaturePolicy(trust),
        layout=layout,
        max_bundle_bytes=64 << 20,
    )
    runner_settings = RunnerSettings(var_dir=root / "var", **{"ui_strict_validation": False, **settings})
    app = QuartTrio("ui_test_runner")
    app.register_blueprint(create_ui_blueprint(bundles=service, settings=runner_settings, validator=validator))

    @app.after_serving
    async def _close() -> None:
        await store.aclose()
        await disk.aclose()

    server = await start_server(nursery, app)
    return UiRunner(server.url, server, service, disk, store_dir, runner_settings, validator)


@dataclass
class Gateway:
    url: str
    server: Server
    client: httpx.AsyncClient
    store_dir: Path

    admin: ClassVar[dict[str, str]] = {"authorization": f"Bearer {ADMIN_TOKEN}"}

    async def post(self, path: str, body: Any, *, expect: int = 201) -> Any:
        response = await self.client.post(path, json=body, headers=self.admin)
        assert response.status_code == expect, response.text
        return response.json()

    async def tenant_with_token(self, tenant_id: str, *, roles: tuple[str, ...] = ("member",)) -> str:
        """Create a tenant and one user; return the user's API token."""
        await self.post("/api/v1/tenants", {"id": tenant_id, "name": tenant_id.title()})
        user = await self.post(f"/api/v1/tenants/{tenant_id}/users",
                               {"email": f"ann@{tenant_id}.test", "name": "Ann Example", "roles": list(roles)})
        token = await self.post(f"/api/v1/users/{user['id']}/tokens", {"name": "t"})
        return str(token["token"])

    async def register_and_install(self, hex_digest: str, extension_id: str, tenant_id: str) -> None:
        await self.post("/api/v1/extensions", {"content_hash": f"sha256:{hex_digest}", "extension_id": extension_id})
        await self.post(f"/api/v1/tenants/{tenant_id}/installs", {"extension_id": extension_id})

    async def uninstall(self, tenant_id: str, extension_id: str) -> None:
        response = await self.client.delete(f"/api/v1/tenants/{tenant_id}/installs/{extension_id}",
                                            headers=self.admin)
        assert response.status_code == 204, response.text


async def start_gateway(
    nursery: trio.Nursery, root: Path, *, store_dir: Path, runner_url: str, runner_public_base: str | None = None,
    **overrides: Any,
) -> Gateway:
    """The real gateway over a SQLite registry and ``store_dir``; ``RUNNER_BASE_URL`` is ``runner_url``."""
    await trio.to_thread.run_sync(lambda: root.mkdir(parents=True, exist_ok=True))
    settings = GatewaySettings(
        runner_base_urls=(runner_url,),
        registry_database=str(root / "registry.sqlite3"),
        bundle_store_base=f"file://{store_dir}",
        admin_token=ADMIN_TOKEN,
        runner_service_token=SERVICE_TOKEN,
        runner_public_base=runner_public_base or runner_url,
        timeout_ms=5000,
        **{"ui_signing_key": UI_KEY, **overrides},
    )
    app = create_app(settings)
    server = await start_server(nursery, app)
    client = httpx.AsyncClient(base_url=server.url, timeout=10)
    return Gateway(server.url, server, client, store_dir)


@dataclass
class RealRunner:
    """The real runner (``runner_trio.serve``): ``/ext-ui`` for the iframe, ``/v1/execute`` for apiproxy."""

    url: str
    shutdown: trio.Event
    stopped: trio.Event

    def invocations(self) -> int:
        """Invocations the runner has answered with outcome ok (read from /metrics; callable from any thread)."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith('runner_invocations_total{outcome="ok"}'):
                return int(float(line.split()[-1]))
        return 0

    async def warmup(self, hex_digest: str) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=120) as client:
            response = await client.post("/v1/warmup", json={"content_hash": hex_digest},
                                         headers={"authorization": f"Bearer {SERVICE_TOKEN}"})
        assert response.status_code == 200, response.text

    async def close(self) -> None:
        self.shutdown.set()
        await self.stopped.wait()


async def start_real_runner(
    nursery: trio.Nursery, root: Path, *, runner_url: str, store_dir: Path, gateway_url: str, cache_root: Path,
    **overrides: Any,
) -> RealRunner:
    from runner_trio import serve

    settings = RunnerSettings(
        bind=runner_url.removeprefix("http://"),
        var_dir=root / "var",
        bundle_store_base=f"file://{store_dir}",
        cache_root=cache_root,
        service_token=SERVICE_TOKEN,
        ui_strict_validation=True,
        ui_signing_key=UI_KEY,
        registry_base_url=gateway_url,
        ui_frame_ancestors=gateway_url,
        drain_timeout_s=1,
    ).replace(**overrides)
    shutdown, stopped = trio.Event(), trio.Event()

    async def run(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await serve(settings, shutdown=shutdown, task_status=task_status)
        finally:
            stopped.set()

    await nursery.start(run)
    return RealRunner(runner_url, shutdown, stopped)
