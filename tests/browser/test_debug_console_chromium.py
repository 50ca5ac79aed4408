"""The debug console page in headless Chromium: a real invocation's events appear live, filters and pause work,
and guest text is never rendered as HTML. Real gateway, real runner, real redis-server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

import bundles
from bundles.store import FileStore
from tests._net import free_port
from tests._redis import RedisServer

from ._servers import start_gateway, start_real_runner
from .test_host_page_chromium import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, _playwright

pytestmark = pytest.mark.browser

EXTENSION = "kitchen-sink"


@dataclass
class Console:
    gateway: str
    token: str
    invoke: Any  # (path, request_id) -> None, callable from the browser thread


@pytest.fixture
async def console(tmp_path: Path, kitchen_sink_bundle: bytes, runner_cache: Path,
                  redis_server: RedisServer) -> AsyncIterator[Console]:
    prefix = f"console-{time.monotonic_ns()}:"
    async with trio.open_nursery() as nursery:
        store_dir = tmp_path / "store"
        store_dir.mkdir()
        runner_url = f"http://127.0.0.1:{free_port()}"
        gateway = await start_gateway(nursery, tmp_path / "gateway", store_dir=store_dir, runner_url=runner_url,
                                      debug_redis_url=redis_server.url, debug_stream_prefix=prefix)
        runner = await start_real_runner(
            nursery, tmp_path / "runner", runner_url=runner_url, store_dir=store_dir, gateway_url=gateway.url,
            cache_root=runner_cache, debug_redis_url=redis_server.url, debug_stream_prefix=prefix,
            ui_strict_validation=False,
        )
        async with FileStore(str(store_dir)) as store:
            hex_digest = bundles.parse_content_hash(await bundles.publish_bundle(store, kitchen_sink_bundle))
        await runner.warmup(hex_digest)
        token = await gateway.tenant_with_token("acme")
        await gateway.register_and_install(hex_digest, EXTENSION, "acme")

        def invoke(path: str, request_id: str) -> None:
            response = httpx.get(f"{gateway.url}/api/ext/{EXTENSION}{path}", timeout=30,
                                 headers={"authorization": f"Bearer {token}", "x-request-id": request_id})
            assert response.status_code in (200, 204), response.text

        try:
            yield Console(gateway.url, token, invoke)
        finally:
            await gateway.client.aclose()
            with trio.fail_after(10):
                await runner.close()
                await gateway.server.close()


def _rows(page: Any) -> list[str]:
    return list(page.eval_on_selector_all("#events tbody tr.event", "rows => rows.map(r => r.innerText)"))


def _until(check: Any, what: str, timeout: float = TIMEOUT_MS / 1000) -> None:
    # Polled from Python: the page's CSP (script-src 'self') forbids the eval behind wait_for_function.
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _drive(console: Console) -> dict[str, Any]:
    with _playwright()() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.set_default_timeout(TIMEOUT_MS)
            assert context.request.post(f"{console.gateway}/api/session", data={"token": console.token}).ok
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{console.gateway}/msp/extensions/{EXTENSION}/debug")
            _until(lambda: page.get_attribute("#status", "data-state") == "live", "the live tail")
            console.invoke("/log?msg=%3Cb%3Efirst%3C%2Fb%3E", "req-one")
            page.wait_for_selector("text=<b>first</b>")
            # The invocation's log, stdout and stderr events arrive one by one: wait for all three streams.
            _until(lambda: all(any(f"\t{stream}\t" in row for row in _rows(page))
                               for stream in ("log", "stdout", "stderr")), "all three streams")
            out: dict[str, Any] = {"first": _rows(page), "html_tags": page.locator("#events tbody b").count()}

            page.click("#pause")
            console.invoke("/log?msg=held-back", "req-two")
            time.sleep(1.0)
            out["while_paused"] = page.locator("text=held-back").count()
            page.click("#pause")
            page.wait_for_selector("text=held-back >> nth=0")

            page.select_option("#level", "error")
            _until(lambda: _rows(page) and all("error" in row for row in _rows(page)), "error rows only")
            out["errors_only"] = _rows(page)
            page.select_option("#level", "")
            page.fill("#request-id", "req-two")
            page.press("#request-id", "Enter")
            _until(lambda: _rows(page) and all("held" in row for row in _rows(page)), "req-two rows only")
            out["req_two"] = _rows(page)
            page.screenshot(path=str(Path("test-artifacts") / "debug-console.png"), full_page=True)
            out["page_errors"] = errors
            return out
        finally:
            browser.close()


async def test_console_shows_live_events_with_filters_and_pause(console: Console) -> None:
    await trio.to_thread.run_sync(lambda: Path("test-artifacts").mkdir(exist_ok=True))
    out = await trio.to_thread.run_sync(_drive, console)
    assert out["page_errors"] == []
    first = "\n".join(out["first"])
    assert "<b>first</b>" in first, "guest text is shown as text"
    assert out["html_tags"] == 0, "and never parsed as HTML"
    for stream in ("log", "stdout", "stderr"):
        assert stream in first
    assert out["while_paused"] == 0, "pause holds new events back"
    assert out["errors_only"], "the level filter keeps error events"
    assert all("error" in row for row in out["errors_only"])
    assert out["req_two"]
    assert all("held-back" in row for row in out["req_two"])
