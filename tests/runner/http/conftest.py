"""A real runner on a free port (Hypercorn's trio worker), real bundles in a file:// store, an httpx client.

The store and the cache are shared by the whole session: bundles are content-addressed, so sharing is safe,
and a toolchain-built component then compiles once per session instead of once per test.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from bundles import pack_directory, publish_bundle
from bundles.store import open_store
from runner_trio import Settings, serve
from tests.guests.wat import load_wat

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "samples"
TOKEN = "test-service-token-0123456789"


@dataclass(frozen=True)
class Shared:
    store_dir: Path
    cache_dir: Path
    work: Path


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Shared:
    base = tmp_path_factory.mktemp("runner-shared")
    return Shared(base / "store", base / "cache", base)


def bundle_dir(root: Path, name: str, component: bytes, *, capabilities: list[str] | None = None,
               ui: dict[str, str] | None = None) -> Path:
    """A bundle source directory: manifest.json, entry.wasm and optional ui/ files."""
    src = root / f"src-{name}"
    src.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"name": name, "publisher": "tests", "version": "1.0.0", "runtime": "wasm-js@1",
                                "entry": "entry.wasm", "capabilities": capabilities or []}
    (src / "manifest.json").write_text(json.dumps(manifest))
    (src / "entry.wasm").write_bytes(component)
    for rel, text in (ui or {}).items():
        path = src / "ui" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return src


def stage_sample(sample: str, work: Path) -> Path:
    """The bundle directory of a built sample: manifest.json, dist/main.wasm and ui/ (no sources, no toolchain)."""
    src = SAMPLES / sample
    if not (src / "dist" / "main.wasm").exists():
        pytest.fail(f"{sample} is not built: run scripts/build-samples")
    dest = work / f"stage-{sample}"
    if not dest.exists():
        (dest / "dist").mkdir(parents=True)
        shutil.copy(src / "manifest.json", dest / "manifest.json")
        shutil.copy(src / "dist" / "main.wasm", dest / "dist" / "main.wasm")
        shutil.copytree(src / "ui", dest / "ui")
    return dest


@dataclass
class RunnerHandle:
    url: str
    client: httpx.AsyncClient
    settings: Settings
    shared: Shared
    shutdown: trio.Event
    published: dict[str, str] = field(default_factory=dict)

    async def publish_dir(self, src: Path) -> str:
        data = pack_directory(src)
        store = open_store(self.settings.resolved_store_base)
        try:
            return await publish_bundle(store, data)
        finally:
            await store.aclose()

    async def publish_wat(self, name: str, **kwargs: Any) -> str:
        if name not in self.published:
            src = bundle_dir(self.shared.work, name, load_wat(name), **kwargs)
            self.published[name] = await self.publish_dir(src)
        return self.published[name]

    async def publish_sample(self, sample: str) -> str:
        if sample not in self.published:
            self.published[sample] = await self.publish_dir(stage_sample(sample, self.shared.work))
        return self.published[sample]

    async def execute(self, content_hash: str, path: str = "/", *, method: str = "GET", body: bytes | None = None,
                      query: dict[str, str] | None = None, tenant: str = "tenant-a", extension: str = "ext-1",
                      limits: dict[str, int] | None = None, providers: list[str] | None = None,
                      headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None,
                      http_headers: dict[str, str] | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "context": {"tenant_id": tenant, "extension_id": extension, "content_hash": content_hash,
                        "install_id": "inst-1", "config": {"mode": "test"}},
            "http": {"method": method, "path": path, "query": query or {}, "headers": http_headers or {},
                     "body_b64": base64.b64encode(body).decode() if body is not None else None},
            "limits": limits or {},
            "providers": providers or [],
        }
        doc.update(extra or {})
        response = await self.client.post(
            "/v1/execute", json=doc,
            headers={"x-alga-tenant": tenant, "x-alga-extension": extension, **(headers or {})},
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


def decode_body(result: dict[str, Any]) -> bytes:
    return base64.b64decode(result["body_b64"]) if result.get("body_b64") is not None else b""


@pytest.fixture
def runner_settings(shared: Shared, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "bind": "127.0.0.1:0",
            "var_dir": tmp_path / "var",
            "bundle_store_base": shared.store_dir.resolve().as_uri(),
            "cache_root": shared.cache_dir,
            "service_token": TOKEN,
            "ui_strict_validation": False,
            "drain_timeout_s": 5,
        }
        base.update(overrides)
        return Settings(**base)

    return make


async def start_runner(nursery: trio.Nursery, settings: Settings, shared: Shared) -> RunnerHandle:
    shutdown = trio.Event()
    binds = await nursery.start(lambda task_status: serve(settings, shutdown=shutdown, task_status=task_status))
    url = binds[0].replace("0.0.0.0", "127.0.0.1")
    client = httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=60)
    return RunnerHandle(url=url, client=client, settings=settings, shared=shared, shutdown=shutdown)


@pytest.fixture
async def runner(nursery: trio.Nursery, runner_settings: Callable[..., Settings],
                 shared: Shared) -> AsyncIterator[RunnerHandle]:
    handle = await start_runner(nursery, runner_settings(), shared)
    try:
        yield handle
    finally:
        await handle.client.aclose()
        handle.shutdown.set()


@pytest.fixture
async def observing(nursery: trio.Nursery, runner_settings: Callable[..., Settings],
                    shared: Shared) -> AsyncIterator[RunnerHandle]:
    """A runner with ``RUNNER_OBSERVE_MEMORY``: it sees a guest hit its memory cap (else a plain trap)."""
    handle = await start_runner(nursery, runner_settings(observe_memory=True), shared)
    try:
        yield handle
    finally:
        await handle.client.aclose()
        handle.shutdown.set()
