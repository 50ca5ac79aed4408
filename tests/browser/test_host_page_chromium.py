"""The host page in headless Chromium (Debian's ``chromium``, driven by Playwright's sync API in a worker thread
while trio keeps serving the gateway, the runner's ``/ext-ui`` and a foreign origin).

Artifact: ``test-artifacts/host-page.png``, a screenshot of the host page with the sample UI embedded.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any, Final, NoReturn

import pytest
import trio

from gateway_quart._host_page import DARK_THEME_TOKENS, DEFAULT_THEME_TOKENS

from ._servers import ROOT
from .conftest import Stack

pytestmark = pytest.mark.browser

CHROMIUM: Final = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS: Final = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACT: Final = ROOT / "test-artifacts" / "host-page.png"
TIMEOUT_MS: Final = 15_000

HOST = "document.querySelector('#ext-host')"
PRIMARY = "getComputedStyle(document.documentElement).getPropertyValue('--alga-color-primary').trim()"


@dataclass(frozen=True)
class Target:
    gateway: str
    token: str
    foreign: str


def _missing(reason: str) -> NoReturn:
    """Skip on a developer's machine; fail under CI, where a skipped browser test would hide a broken set-up."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason}; CI must run the browser tests (scripts/test installs both)", pytrace=False)
    pytest.skip(reason)


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the dev extra installs it
        _missing("playwright is not installed")
    if not shutil.which(CHROMIUM):
        _missing("chromium is not installed (apt-get install chromium)")
    return sync_playwright


def _until(target: Any, expression: str) -> Any:
    """Poll ``expression`` until it is truthy and return it.

    Not ``wait_for_function``: that compiles its predicate inside the page, which the pages' CSP (no
    ``'unsafe-eval'``, on purpose) refuses; ``evaluate`` runs through the DevTools protocol instead.
    """
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not (value := target.evaluate(expression)):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        target.wait_for_timeout(50)
    return value


def _with_page(target: Target, body: Any) -> Any:
    """Run ``body(page, context)`` in a fresh Chromium signed in to the gateway; report page errors."""
    sync_playwright = _playwright()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 900})
            return run_signed_in(context, target.gateway, target.token, body)
        finally:
            browser.close()


def run_signed_in(context: Any, gateway: str, token: str, body: Any) -> Any:
    """Sign ``context`` in to the gateway, run ``body(page, context)`` on a new page, and fail on any page
    error, console error or failed load it saw."""
    context.set_default_timeout(TIMEOUT_MS)
    login = context.request.post(f"{gateway}/api/session", data={"token": token})
    assert login.ok, login.text()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Failed loads are checked by URL below (the console only says "404"); the favicon may be missing.
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    result = body(page, context)
    assert errors == [], errors
    return result


def _drive_host_page(page: Any, context: Any, target: Target, extension_calls: Any) -> dict[str, Any]:
    page.goto(f"{target.gateway}/msp/extensions/kitchen-sink?path=/start")
    page.wait_for_selector("#ext-host[data-bridge='ready']")
    iframe = page.wait_for_selector("iframe.ext-frame")
    frame = iframe.content_frame()
    out: dict[str, Any] = {
        "sandbox": iframe.get_attribute("sandbox"),
        "src": iframe.get_attribute("src"),
        "origin_in_frame": frame.evaluate("window.origin"),
    }

    # bootstrap: session, navigation and theme tokens reached the extension's document.
    frame.wait_for_selector("#status[data-state='bootstrapped']")
    out["tenant"] = frame.inner_text("#tenant")
    out["route"] = frame.inner_text("#route")
    out["primary_in_frame"] = frame.evaluate(PRIMARY)

    # apiproxy: the extension's /echo answered through gateway -> /v1/execute.
    frame.wait_for_selector("#api-result:not([data-state='pending'])")
    out["api_state"] = frame.get_attribute("#api-result", "data-state")
    out["api_text"] = frame.inner_text("#api-result")
    out["api_calls_after_first"] = extension_calls()

    # resize: the frame reported its content height and the host applied it (clamped); growing it grows the frame.
    _until(page, f"{HOST}.dataset.height !== undefined")
    # The first layout may also take more than one step: read both sides until the last resize has landed.
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        out["requested_height"] = int(frame.evaluate("document.body.dataset.requestedHeight"))
        out["frame_height"] = page.evaluate("document.querySelector('iframe.ext-frame').style.height")
        if out["frame_height"] == f"{min(4000, max(100, out['requested_height']))}px" or time.monotonic() > deadline:
            break
        page.wait_for_timeout(50)
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACT), full_page=True)  # the page as a user first sees it
    frame.click("#grow")
    _until(page, f"Number({HOST}.dataset.height) > {int(out['frame_height'][:-2]) + 800}")
    # The content may lay out in more than one step; each step sends a resize. Wait for the last one to land.
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        out["grown_height"] = page.evaluate("document.querySelector('iframe.ext-frame').style.height")
        out["grown_requested"] = int(frame.evaluate("document.body.dataset.requestedHeight"))
        if out["grown_height"] == f"{min(4000, max(100, out['grown_requested']))}px" or time.monotonic() > deadline:
            break
        page.wait_for_timeout(50)

    # navigate: the host records the extension's route in its own URL.
    frame.click("#go-settings")
    _until(page, f"{HOST}.dataset.navPath === '/settings'")
    out["page_url"] = page.url

    # theme_tokens: the host switches theme and the frame follows.
    page.click("#theme-toggle")
    _until(frame, f"{PRIMARY} === {json.dumps(DARK_THEME_TOKENS['--alga-color-primary'])}")
    out["primary_after_toggle"] = frame.evaluate(PRIMARY)

    # The channel id is in the fragment of the iframe's URL; hand it to the hostile pages to show that it is the
    # source and origin checks (not only the channel) that stop them.
    channel = page.evaluate(
        "new URLSearchParams(new URL(document.querySelector('iframe.ext-frame').src).hash.slice(1)).get('alga-channel')"
    )
    height_before = page.evaluate("document.querySelector('iframe.ext-frame').style.height")
    ignored_before = int(page.evaluate(f"{HOST}.dataset.ignored"))
    api_calls_before = int(page.evaluate(f"{HOST}.dataset.apiCalls"))
    extension_calls_before = extension_calls()

    # The extension's own window, with a wrong channel id: ignored.
    frame.evaluate(
        "parent.postMessage({alga: true, version: '1', type: 'resize', payload: {height: 2222}, channel: 'nope'}, '*')"
    )
    _until(page, f"Number({HOST}.dataset.ignored) >= {ignored_before + 1}")
    out["wrong_channel_reason"] = page.evaluate(f"{HOST}.dataset.lastIgnored")

    # Another origin (a popup this page opened): every message to the host and to the frame is ignored.
    with page.expect_popup() as popup_info:
        page.evaluate(f"window.open({json.dumps(target.foreign + '?channel=' + channel)}, 'foreign')")
    popup = popup_info.value
    _until(popup, "document.title === 'sent'")
    _until(page, f"Number({HOST}.dataset.ignored) >= {ignored_before + 4}")
    out["foreign_reason"] = page.evaluate(f"{HOST}.dataset.lastIgnored")
    popup.close()
    # A round trip through the bridge after the forged messages: they were delivered before its answer.
    frame.click("#call-api")
    frame.wait_for_selector("#api-result[data-state='ok']")
    out["after_foreign"] = {
        "height": page.evaluate("document.querySelector('iframe.ext-frame').style.height"),
        "nav_path": page.evaluate(f"{HOST}.dataset.navPath"),
        "api_calls": int(page.evaluate(f"{HOST}.dataset.apiCalls")),
        "extension_calls": extension_calls(),
        "tenant_in_frame": frame.inner_text("#tenant"),
        "primary_in_frame": frame.evaluate(PRIMARY),
    }
    out["before_foreign"] = {"height": height_before, "api_calls": api_calls_before,
                             "extension_calls": extension_calls_before}
    return out


async def test_host_page_embeds_the_sample_ui(stack: Stack) -> None:
    target = Target(stack.gateway.url, stack.token, stack.foreign_url)
    out = await trio.to_thread.run_sync(
        _with_page, target, lambda page, context: _drive_host_page(page, context, target, stack.runner.invocations)
    )

    assert out["sandbox"] == "allow-scripts"
    assert out["origin_in_frame"] == "null"  # opaque: no access to the runner's or the gateway's origin
    # The gateway's signed URL: the token rides in the path, no ?tenant= (docs/ui.md).
    assert out["src"].startswith(f"{stack.runner.url}/ext-ui/kitchen-sink/sha256:{stack.hex}/~t/")
    assert "/index.html?" in out["src"]
    assert "tenant=" not in out["src"]
    assert "#alga-channel=" in out["src"]

    assert out["tenant"] == "acme"
    assert out["route"] == "/start"
    assert out["primary_in_frame"] == DEFAULT_THEME_TOKENS["--alga-color-primary"]

    assert out["api_state"] == "ok", out["api_text"]
    status, _, body = out["api_text"].partition(" ")
    assert status == "200"
    echoed = json.loads(body)  # answered by the real js-kitchen-sink guest, through gateway and runner
    assert (echoed["method"], echoed["url"]) == ("POST", "/echo")
    assert json.loads(base64.b64decode(echoed["bodyBase64"])) == {"hello": "from the iframe"}
    assert out["api_calls_after_first"] == 1

    expected = min(4000, max(100, out["requested_height"]))
    assert out["frame_height"] == f"{expected}px"
    assert out["grown_height"] == f"{min(4000, max(100, out['grown_requested']))}px"

    assert "path=%2Fsettings" in out["page_url"]
    assert out["primary_after_toggle"] == DARK_THEME_TOKENS["--alga-color-primary"]

    assert out["wrong_channel_reason"] == "channel"
    assert out["foreign_reason"] == "source"
    after, before = out["after_foreign"], out["before_foreign"]
    assert after["height"] == before["height"]
    assert after["nav_path"] == "/settings"
    assert after["api_calls"] == before["api_calls"] + 1  # only the click's own call
    assert after["extension_calls"] == before["extension_calls"] + 1
    assert after["tenant_in_frame"] == "acme"
    assert after["primary_in_frame"] == DARK_THEME_TOKENS["--alga-color-primary"]
    assert ARTIFACT.stat().st_size > 10_000


def _bridge_unit_checks(page: Any, context: Any, target: Target) -> Any:
    page.goto(f"{target.gateway}/msp/extensions/kitchen-sink")
    page.wait_for_selector("#ext-host[data-bridge='ready']")
    return page.evaluate(
        """async () => {
          const m = await import('/static/ext-bridge.js');
          const refused = (payload) => { try { m.resolveApiRequest('/api/ext/x', payload); return false; }
                                          catch (e) { return true; } };
          const throws = (fn) => { try { fn(); return false; } catch (e) { return true; } };
          const hash = 'sha256:' + 'ab'.repeat(32);
          return {
            clamp: [m.clampHeight(5), m.clampHeight(250.4), m.clampHeight(99999), m.clampHeight('300'),
                    m.clampHeight(NaN), m.clampHeight(Infinity)],
            src: m.buildExtUiSrc('kitchen-sink', hash, '/a b', {runnerBase: 'https://runner.test/base/',
                                 token: 'WyJh.sig-_1', channel: 'c1', parentOrigin: 'https://gw.test/x'}),
            badIds: [throws(() => m.buildExtUiSrc('../x', hash, '/', {runnerBase: 'https://r.test'})),
                     throws(() => m.buildExtUiSrc('x', hash, '/', {runnerBase: 'https://r.test', token: '../a'})),
                     throws(() => m.buildExtUiSrc('x', 'sha256:zz', '/', {runnerBase: 'https://r.test'})),
                     throws(() => m.buildExtUiSrc('x', hash, '/', {runnerBase: 'javascript:alert(1)'}))],
            refused: [
              {route: '//evil.test/x'}, {route: '/../other/x'}, {route: '/%2e%2e/other'}, {route: '/a%2fb'},
              {route: '\\\\evil'}, {route: 'relative'}, {route: '/x#frag'}, {route: '/a\\nb'}, {route: ''},
              {route: '/x', method: 'TRACE'}, {route: '/x', method: 'GET', body: 'e30='},
              {route: '/x', body: '***'}, {route: '/x', body: 'e30=', content_type: 'text/html\\r\\nx: y'},
              {route: '/x'.padEnd(3000, 'x')}, null,
            ].map(refused),
            ok: [m.resolveApiRequest('/api/ext/x', {route: '/items/7?q=1'}),
                 m.resolveApiRequest('/api/ext/x', {route: '/echo', body: 'e30='})]
                 .map((r) => [r.url, r.method, r.headers['content-type'] || null, r.body ? r.body.length : null]),
            envelopes: [m.isEnvelope({alga: true, version: '1', type: 'ready', payload: {}}),
                        m.isEnvelope({alga: true, version: '2', type: 'ready'}),
                        m.isEnvelope({alga: 'true', version: '1', type: 'ready'}),
                        m.isEnvelope({alga: true, version: '1', type: 'ready', payload: 'x'}),
                        m.isEnvelope('{"alga":true}')],
            sameOriginRefused: throws(() => m.bootstrapIframe(document.createElement('iframe'), {
              runnerOrigin: location.origin, extensionId: 'x', channel: 'c',
              sandbox: 'allow-scripts allow-same-origin'})),
            channelRequired: throws(() => m.bootstrapIframe(document.createElement('iframe'), {
              runnerOrigin: 'https://r.test', extensionId: 'x'})),
            base64: m.bytesToBase64(m.base64ToBytes('AAEC/w==')),
          };
        }"""
    )


async def test_bridge_rules_in_chromium(stack: Stack) -> None:
    target = Target(stack.gateway.url, stack.token, stack.foreign_url)
    out = await trio.to_thread.run_sync(
        _with_page, target, lambda page, context: _bridge_unit_checks(page, context, target))
    assert out["clamp"] == [100, 250, 4000, None, None, None]
    hash_ = "sha256:" + "ab" * 32
    assert out["src"] == (
        f"https://runner.test/base/ext-ui/kitchen-sink/{hash_}/~t/WyJh.sig-_1/index.html?path=%2Fa+b"
        "&extensionId=kitchen-sink#alga-channel=c1&alga-parent=https%3A%2F%2Fgw.test"
    )
    assert out["badIds"] == [True, True, True, True]
    assert out["refused"] == [True] * 15
    origin = stack.gateway.url
    assert out["ok"] == [
        [f"{origin}/api/ext/x/items/7?q=1", "GET", None, None],
        [f"{origin}/api/ext/x/echo", "POST", "application/json", 2],
    ]
    assert out["envelopes"] == [True, False, False, False, False]
    assert out["sameOriginRefused"] is True
    assert out["channelRequired"] is True
    assert out["base64"] == "AAEC/w=="
