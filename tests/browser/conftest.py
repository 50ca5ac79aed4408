"""The whole UI path on real servers: the runner's ``/ext-ui`` (strict mode, serving the URLs the gateway signs),
the gateway with its host page, the js-kitchen-sink sample's bundle, and a server on a third origin playing a hostile
page."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
from quart import Response
from quart_trio import QuartTrio

import bundles
from bundles.store import FileStore
from gateway_quart._settings import UiOriginTemplate as GatewayUiOriginTemplate
from runner_trio._ui_paths import UiOriginTemplate as RunnerUiOriginTemplate
from tests._net import free_port
from tests._redis import redis_server  # noqa: F401 - session fixture for the console test
from tests.gateway._helpers import Server, start_server

from ._servers import (
    Gateway,
    RealRunner,
    stage_sample,
    start_gateway,
    start_real_runner,
)

EXTENSION_ID = "kitchen-sink"

# A page on a third origin that knows the bridge protocol (and, for the test, even the channel id): none of its
# messages may have an effect, whichever window it sends them to.
FOREIGN_HTML = """<!doctype html><html><head><meta charset="utf-8"><title>foreign</title></head>
<body><p>Foreign origin</p><script src="foreign.js"></script></body></html>"""
FOREIGN_JS = """(function () {
  var channel = new URLSearchParams(location.search).get('channel');
  function envelope(type, payload, requestId) {
    var message = {alga: true, version: '1', type: type, payload: payload, channel: channel};
    if (requestId) message.request_id = requestId;
    return message;
  }
  var host = window.opener;
  host.postMessage(envelope('resize', {height: 3333}), '*');
  host.postMessage(envelope('navigate', {path: '/evil'}), '*');
  host.postMessage(envelope('apiproxy', {route: '/echo', method: 'POST', body: btoa('{"evil":true}')}, 'evil-1'), '*');
  var frame = host.frames[0];
  frame.postMessage(envelope('theme_tokens', {theme_tokens: {'--alga-color-primary': 'rgb(255, 0, 0)'}}), '*');
  frame.postMessage(envelope('bootstrap', {session: {tenant_id: 'evil'}, theme_tokens: {},
                                           navigation: {path: '/evil'}}), '*');
  document.title = 'sent';
})();
"""


@dataclass
class Stack:
    runner: RealRunner
    gateway: Gateway
    foreign_url: str
    hex: str
    token: str
    other_token: str
    viewer_token: str
    extension_id: str = EXTENSION_ID


@pytest.fixture(scope="session")
def kitchen_sink_bundle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The js-kitchen-sink sample (built component, manifest, ui/) packed once per session.

    Packed at zstd level 3 rather than ``extctl pack``'s 19: same contents, a different (equally valid) content
    hash, and seconds saved on a 12 MB component.
    """
    tree = stage_sample("js-kitchen-sink", tmp_path_factory.mktemp("kitchen-sink") / "bundle")
    return bundles.pack_directory(tree, level=3)


def foreign_app() -> QuartTrio:
    app = QuartTrio("foreign")

    @app.get("/foreign.html")
    async def page() -> Response:
        return Response(FOREIGN_HTML, content_type="text/html; charset=utf-8")

    @app.get("/foreign.js")
    async def script() -> Response:
        return Response(FOREIGN_JS, content_type="text/javascript; charset=utf-8")

    return app


@pytest.fixture(scope="session")
def runner_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One runner cache for the session: the 12 MB component compiles once, later runners load the artifact."""
    return tmp_path_factory.mktemp("runner-cache")


@pytest.fixture
async def stack(tmp_path: Path, kitchen_sink_bundle: bytes, runner_cache: Path) -> AsyncIterator[Stack]:
    """Gateway + UI runner (strict) + foreign origin, with tenant ``acme`` holding an install of the sample."""
    started: list[Server] = []
    async with trio.open_nursery() as nursery:
        store_dir = tmp_path / "store"
        store_dir.mkdir()
        # The gateway needs the runner's URL and the runner the gateway's (strict mode): pick the runner's port
        # first. The runner is the real one: /ext-ui for the iframe and /v1/execute (wasmtime) for apiproxy.
        runner_url = f"http://127.0.0.1:{free_port()}"
        gateway = await start_gateway(nursery, tmp_path / "gateway", store_dir=store_dir, runner_url=runner_url)
        runner = await start_real_runner(
            nursery, tmp_path / "runner", runner_url=runner_url, store_dir=store_dir, gateway_url=gateway.url,
            cache_root=runner_cache,
        )
        foreign = await start_server(nursery, foreign_app())
        started[:] = [foreign, runner, gateway.server]
        try:
            async with FileStore(str(store_dir)) as store:
                hex_digest = bundles.parse_content_hash(await bundles.publish_bundle(store, kitchen_sink_bundle))
            await runner.warmup(hex_digest)  # compile before the browser's first apiproxy call
            token = await gateway.tenant_with_token("acme")
            other_token = await gateway.tenant_with_token("globex")
            viewer = await gateway.post(
                "/api/v1/tenants/acme/users", {"email": "vic@acme.test", "name": "Vic", "roles": ["viewer"]})
            viewer_token = (await gateway.post(f"/api/v1/users/{viewer['id']}/tokens", {"name": "v"}))["token"]
            await gateway.register_and_install(hex_digest, EXTENSION_ID, "acme")
            yield Stack(runner, gateway, f"{foreign.url}/foreign.html", hex_digest, token, other_token, viewer_token)
        finally:
            await gateway.client.aclose()
            with trio.fail_after(10):
                for server in started:
                    await server.close()


# -- isolated-origin mode: each install's UI on its own origin ------------------------------------------------------

REF_UI_ID = "ref-ui"
REF_UI_OTHER_ID = "ref-ui-b"

# A page on a third origin speaking the reference SDK's protocol (no channel): to the host, and to the frame.
FOREIGN_REF_JS = """(function () {
  function envelope(type, payload, requestId) {
    var message = {alga: true, version: '1', type: type, payload: payload};
    if (requestId) message.request_id = requestId;
    return message;
  }
  var host = window.opener;
  host.postMessage(envelope('resize', {height: 3333}), '*');
  host.postMessage(envelope('navigate', {path: '/evil'}), '*');
  host.postMessage(envelope('apiproxy', {route: '/echo', method: 'POST', body: btoa('{"evil":true}')}, 'evil-1'), '*');
  var frame = host.frames[0];
  frame.postMessage(envelope('theme', {'--alga-primary': 'rgb(255, 0, 0)'}), '*');
  frame.postMessage(envelope('bootstrap', {session: {token: 'evil', expires_at: null},
                                           theme_tokens: {'--alga-primary': 'rgb(255, 0, 0)'},
                                           navigation: {path: '/evil'}}), '*');
  document.title = 'sent';
})();
"""


@dataclass
class IsolatedStack:
    runner: RealRunner
    gateway: Gateway
    foreign_url: str
    template: str
    hex: str
    other_hex: str
    token: str

    def origin(self, extension: str, tenant: str = "acme") -> str:
        return self.template.replace("{extension}", extension).replace("{tenant}", tenant)


@pytest.fixture(scope="session")
def ref_ui_bundles(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """The ref-ui sample packed, and a second extension with the same UI (another manifest, another hash)."""
    root = tmp_path_factory.mktemp("ref-ui")
    tree = stage_sample("ref-ui", root / "a")
    other = stage_sample("ref-ui", root / "b")
    manifest = json.loads((other / "manifest.json").read_text())
    # No endpoints: its UI's own handler calls are refused by the gateway, so its component is never compiled.
    manifest = {**manifest, "name": "com.example.samples.ref-ui-b"}
    del manifest["api"]
    (other / "manifest.json").write_text(json.dumps(manifest))
    return bundles.pack_directory(tree, level=3), bundles.pack_directory(other, level=3)


def foreign_ref_app() -> QuartTrio:
    app = foreign_app()

    @app.get("/foreign-ref.js")
    async def ref_script() -> Response:
        return Response(FOREIGN_REF_JS, content_type="text/javascript; charset=utf-8")

    @app.get("/foreign-ref.html")
    async def ref_page() -> Response:
        return Response(FOREIGN_HTML.replace("foreign.js", "foreign-ref.js"), content_type="text/html; charset=utf-8")

    return app


@pytest.fixture
async def isolated_stack(
    tmp_path: Path, ref_ui_bundles: tuple[bytes, bytes], runner_cache: Path
) -> AsyncIterator[IsolatedStack]:
    """Gateway + runner with ``EXT_UI_ORIGIN_TEMPLATE`` (``http://{extension}--{tenant}.ext-ui.localhost:<port>``),
    tenant ``acme`` holding installs of ``ref-ui`` and ``ref-ui-b``; a foreign origin."""
    started: list[Server] = []
    async with trio.open_nursery() as nursery:
        store_dir = tmp_path / "store"
        store_dir.mkdir()
        port = free_port()
        runner_url = f"http://127.0.0.1:{port}"
        template = f"http://{{extension}}--{{tenant}}.ext-ui.localhost:{port}"
        gateway = await start_gateway(nursery, tmp_path / "gateway", store_dir=store_dir, runner_url=runner_url,
                                      ui_origin_template=GatewayUiOriginTemplate.parse(template))
        runner = await start_real_runner(
            nursery, tmp_path / "runner", runner_url=runner_url, store_dir=store_dir, gateway_url=gateway.url,
            cache_root=runner_cache, ui_origin_template=RunnerUiOriginTemplate.parse(template),
        )
        foreign = await start_server(nursery, foreign_ref_app())
        started[:] = [foreign, runner, gateway.server]
        try:
            async with FileStore(str(store_dir)) as store:
                hexes = [bundles.parse_content_hash(await bundles.publish_bundle(store, data))
                         for data in ref_ui_bundles]
            await runner.warmup(hexes[0])  # compile before the browser's first apiproxy call
            token = await gateway.tenant_with_token("acme")
            await gateway.register_and_install(hexes[0], REF_UI_ID, "acme")
            await gateway.register_and_install(hexes[1], REF_UI_OTHER_ID, "acme")
            yield IsolatedStack(runner, gateway, f"{foreign.url}/foreign-ref.html", template, hexes[0], hexes[1],
                                token)
        finally:
            await gateway.client.aclose()
            with trio.fail_after(10):
                for server in started:
                    await server.close()
