"""examples/hello-js in headless Chromium: the gateway's host page frames its esbuild-bundled UI, which lists the
items kept in the host's ``storage`` through the extension's own API (the iframe protocol's ``apiproxy``), and
shows a new one after it is created from the form.

Real parts: the runner (``/ext-ui`` for the frame, wasmtime for ``/v1/execute``), the gateway and its host page,
the componentize-js build of the example (``scripts/build-samples``). Page errors, console errors and failed loads
fail the test (``run_signed_in``).

Artifact: ``test-artifacts/hello-js.png``, the host page after an item was created.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
import trio

import bundles
from bundles.store import FileStore
from tests._net import free_port

from ._servers import ROOT, Gateway, RealRunner, start_gateway, start_real_runner
from .test_host_page_chromium import CHROMIUM, CHROMIUM_ARGS, _playwright, _until, run_signed_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXAMPLE: Final = ROOT / "examples" / "hello-js"
EXTENSION_ID: Final = "hello-js"
TENANT: Final = "acme"
ARTIFACT: Final = ROOT / "test-artifacts" / "hello-js.png"


@dataclass
class HelloStack:
    runner: RealRunner
    gateway: Gateway
    token: str


def _stage(dest: Path) -> Path:
    """The bundle folder of the built example: manifest, component and ui/ (with the bundled dist/app.js)."""
    for built in (EXAMPLE / "dist" / "main.wasm", EXAMPLE / "ui" / "dist" / "app.js"):
        if not built.is_file():
            raise FileNotFoundError(f"{built} is missing: run scripts/build-samples hello-js")
    (dest / "dist").mkdir(parents=True)
    (dest / "manifest.json").write_bytes((EXAMPLE / "manifest.json").read_bytes())
    (dest / "dist" / "main.wasm").write_bytes((EXAMPLE / "dist" / "main.wasm").read_bytes())
    shutil.copytree(EXAMPLE / "ui", dest / "ui")
    return dest


@pytest.fixture
async def hello_stack(tmp_path: Path, runner_cache: Path) -> AsyncIterator[HelloStack]:
    """Gateway + real runner (shared UI mode, the dev stack's), tenant ``acme`` with hello-js installed."""
    async with trio.open_nursery() as nursery:
        store_dir = tmp_path / "store"
        store_dir.mkdir()
        runner_url = f"http://127.0.0.1:{free_port()}"
        gateway = await start_gateway(nursery, tmp_path / "gateway", store_dir=store_dir, runner_url=runner_url)
        runner = await start_real_runner(
            nursery, tmp_path / "runner", runner_url=runner_url, store_dir=store_dir, gateway_url=gateway.url,
            cache_root=runner_cache,
        )
        try:
            tree = await trio.to_thread.run_sync(_stage, tmp_path / "bundle")
            data = await trio.to_thread.run_sync(lambda: bundles.pack_directory(tree, level=3))
            async with FileStore(str(store_dir)) as store:
                hex_digest = bundles.parse_content_hash(await bundles.publish_bundle(store, data))
            await runner.warmup(hex_digest)  # compile before the frame's first apiproxy call
            token = await gateway.tenant_with_token(TENANT)
            manifest = json.loads((EXAMPLE / "manifest.json").read_text())
            await gateway.post("/api/v1/extensions", {"content_hash": f"sha256:{hex_digest}",
                                                      "extension_id": EXTENSION_ID})
            await gateway.post(f"/api/v1/tenants/{TENANT}/installs", {
                "extension_id": EXTENSION_ID, "granted_capabilities": manifest["capabilities"]})
            yield HelloStack(runner, gateway, token)
        finally:
            await gateway.client.aclose()
            with trio.fail_after(10):
                await runner.close()
                await gateway.server.close()
            nursery.cancel_scope.cancel()


def _drive(page: Any, context: Any, gateway: str) -> dict[str, Any]:
    page.goto(f"{gateway}/msp/extensions/{EXTENSION_ID}")
    page.wait_for_selector("#ext-host[data-bridge='ready']")
    frame = page.wait_for_selector("iframe.ext-frame").content_frame()
    frame.wait_for_selector("body[data-state='ready']")
    out: dict[str, Any] = {
        "count_before": frame.get_attribute("#items", "data-count"),
        "items_before": frame.eval_on_selector_all("#items li", "(els) => els.map((e) => e.textContent)"),
        "secret": frame.inner_text("#secret"),
    }
    for text in ("Buy milk", "Write the docs"):
        frame.fill("#text", text)
        frame.click("#add-button")
        expected = int(out["count_before"]) + (1 if text == "Buy milk" else 2)
        # The list grows, or the UI shows why not (then the asserts below name it).
        _until(frame, f"document.querySelector('#items').dataset.count === '{expected}' || "
                      "document.querySelector('#error').textContent")
    out["items_after"] = frame.eval_on_selector_all("#items li", "(els) => els.map((e) => e.textContent)")
    out["input_after"] = frame.input_value("#text")
    out["error"] = frame.inner_text("#error")
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACT), full_page=True)
    # A fresh page reads the list back from storage: the items were kept by the host, not by the frame.
    page.reload()
    page.wait_for_selector("#ext-host[data-bridge='ready']")
    frame = page.wait_for_selector("iframe.ext-frame").content_frame()
    frame.wait_for_selector("body[data-state='ready']")
    out["items_reloaded"] = frame.eval_on_selector_all("#items li", "(els) => els.map((e) => e.textContent)")
    return out


def _with_page(gateway: str, token: str) -> dict[str, Any]:
    sync_playwright = _playwright()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 900})
            result: dict[str, Any] = run_signed_in(context, gateway, token,
                                                   lambda page, ctx: _drive(page, ctx, gateway))
            return result
        finally:
            browser.close()


@pytest.mark.timeout(300)
async def test_hello_js_ui_lists_and_creates_items_through_the_host(hello_stack: HelloStack) -> None:
    out = await trio.to_thread.run_sync(_with_page, hello_stack.gateway.url, hello_stack.token)

    assert out["error"] == ""
    assert out["count_before"] == "0"
    assert out["items_before"] == []
    # The secret call went through the handler; this install has none, and the UI says so (never a value).
    assert out["secret"] == "secret api_key: not set"
    assert out["items_after"] == ["Buy milk", "Write the docs"]
    assert out["input_after"] == ""
    assert out["error"] == ""
    assert out["items_reloaded"] == ["Buy milk", "Write the docs"]
