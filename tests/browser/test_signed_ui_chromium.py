"""Signed /ext-ui URLs in Chromium: the gateway's gate redirects a signed-in browser to a signed runner URL, the
page's relative assets load under the token, and a UI page opened top-level runs in an opaque origin (the CSP
``sandbox`` of the shared origin), so its script never acts as the origin every extension shares."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from .conftest import Stack
from .test_host_page_chromium import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, _playwright

pytestmark = pytest.mark.browser

PROBE = """() => {
  const refused = (fn) => { try { fn(); return false; } catch (e) { return true; } };
  return {
    origin: self.origin,
    cookieRefused: refused(() => document.cookie),
    storageRefused: refused(() => window.localStorage.length),
    scripts: Array.from(document.scripts, (s) => s.src),
  };
}"""


def _top_level(gateway: str, token: str, path: str) -> dict[str, Any]:
    sync_playwright = _playwright()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.set_default_timeout(TIMEOUT_MS)
            assert context.request.post(f"{gateway}/api/session", data={"token": token}).ok
            page = context.new_page()
            loaded: list[tuple[int, str]] = []
            page.on("response", lambda r: loaded.append((r.status, r.url)))
            page.goto(f"{gateway}{path}")
            page.wait_for_load_state("load")
            return {**page.evaluate(PROBE), "url": page.url, "loaded": loaded}
        finally:
            browser.close()


async def test_a_ui_page_opened_top_level_is_signed_and_sandboxed(stack: Stack) -> None:
    path = f"/ext-ui/kitchen-sink/sha256:{stack.hex}/index.html"
    out = await trio.to_thread.run_sync(_top_level, stack.gateway.url, stack.token, path)
    signed = f"{stack.runner.url}/ext-ui/kitchen-sink/sha256:{stack.hex}/~t/"
    assert out["url"].startswith(signed), out["url"]  # the gate's 308: a signed URL, no ?tenant=
    assert "tenant=" not in out["url"]
    assert out["origin"] == "null"  # the CSP sandbox: an opaque origin, even top-level
    assert out["cookieRefused"] is True
    assert out["storageRefused"] is True
    # The page's relative scripts resolved under the token and loaded.
    assert out["scripts"], out
    assert all(src.startswith(signed) for src in out["scripts"]), out["scripts"]
    runner_loads = [(status, url) for status, url in out["loaded"] if url.startswith(signed)]
    assert len(runner_loads) > len(out["scripts"]), out["loaded"]  # the page and its scripts (and styles)
    assert all(status == 200 for status, _ in runner_loads), out["loaded"]
