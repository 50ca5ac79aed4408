"""Isolated-origin mode in headless Chromium: the ref-ui sample (a plain ES-module UI on an SDK that speaks the
reference iframe SDK's protocol) on its install's own origin, ``http://ref-ui--acme.ext-ui.localhost:<port>``.

``*.localhost`` resolves to loopback inside Chromium, so no DNS is involved.

Artifact: ``test-artifacts/host-page-reference-ui.png``, the host page with the module-script UI embedded.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any, Final

import pytest
import trio

from gateway_quart._host_page import DARK_THEME_TOKENS, DEFAULT_THEME_TOKENS, ISOLATED_SANDBOX

from ._servers import ROOT
from .conftest import REF_UI_ID, REF_UI_OTHER_ID, IsolatedStack
from .test_host_page_chromium import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, _playwright, _until, run_signed_in

pytestmark = pytest.mark.browser

ARTIFACT: Final = ROOT / "test-artifacts" / "host-page-reference-ui.png"
HOST = "document.querySelector('#ext-host')"
FRAME_HEIGHT = "document.querySelector('iframe.ext-frame').style.height"
PRIMARY = "getComputedStyle(document.documentElement).getPropertyValue('--alga-primary').trim()"

# What the extension's own document tries against the host and the other extension; each probe answers the
# value it could read, or the name of the error that stopped it.
PROBES = """(names) => {
  const attempt = (fn) => { try { const v = fn(); return v === undefined ? 'undefined' : v; }
                            catch (e) { return 'blocked:' + e.name; } };
  return {
    ownStorageKeys: attempt(() => Object.keys(localStorage).join(',')),
    hostSecretInOwnStorage: attempt(() => localStorage.getItem(names.hostKey)),
    otherSecretInOwnStorage: attempt(() => localStorage.getItem(names.otherKey)),
    ownCookies: attempt(() => document.cookie),
    origin: window.origin,
    parentDocument: attempt(() => parent.document.title),
    parentStorage: attempt(() => parent.localStorage.getItem(names.hostKey)),
    parentCookie: attempt(() => parent.document.cookie),
    topLocation: attempt(() => top.location.href),
  };
}"""


def _with_profile_page(gateway: str, token: str, profile: Path, body: Any) -> Any:
    """Like ``_with_page``, in a persistent (not incognito) profile: an incognito context blocks storage in
    every third-party frame, which would make "the frame cannot read another origin's storage" hold trivially.
    A regular profile gives the frame its own (partitioned) storage, and the probes test the origin boundary."""
    sync_playwright = _playwright()
    # Third-party cookies (and with them storage in cross-site frames) allowed, as in a default desktop profile;
    # this Chromium blocks them out of the box.
    (profile / "Default").mkdir(parents=True, exist_ok=True)
    (profile / "Default" / "Preferences").write_text(json.dumps(
        {"profile": {"cookie_controls_mode": 0, "block_third_party_cookies": False}}))
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport={"width": 1100, "height": 900})
        try:
            return run_signed_in(context, gateway, token, body)
        finally:
            context.close()


def _drive(page: Any, context: Any, stack: IsolatedStack) -> dict[str, Any]:
    other_origin = stack.origin(REF_UI_OTHER_ID)
    page.goto(f"{stack.gateway.url}/msp/extensions/{REF_UI_ID}?path=/start")
    page.wait_for_selector("#ext-host[data-bridge='ready']")
    iframe = page.wait_for_selector("iframe.ext-frame")
    frame = iframe.content_frame()
    out: dict[str, Any] = {
        "mode": page.evaluate(f"{HOST}.dataset.uiMode"),
        "sandbox": iframe.get_attribute("sandbox"),
        "src": iframe.get_attribute("src"),
        "origin_in_frame": frame.evaluate("window.origin"),
        "module_scripts": frame.evaluate("[...document.scripts].map((s) => [s.type, new URL(s.src).pathname])"),
    }

    # bootstrap: the SDK applied the theme tokens and saw the navigation path; no credential came with it.
    frame.wait_for_selector("body[data-state='bootstrapped']")
    out["primary_in_frame"] = frame.evaluate(PRIMARY)
    out["route"] = frame.inner_text("#route")
    out["session"] = frame.inner_text("#session")
    out["parent_in_frame"] = frame.inner_text("#parent")

    # apiproxy, GET and POST, answered by the guest through the gateway and the runner.
    for name in ("get", "post"):
        frame.wait_for_selector(f"#{name}-result:not([data-state='pending'])")
        out[f"{name}_state"] = frame.get_attribute(f"#{name}-result", "data-state")
        out[f"{name}_text"] = frame.inner_text(f"#{name}-result")

    # resize: the frame's reported height is applied; more content grows the frame.
    _until(page, f"{HOST}.dataset.height !== undefined")
    # The content may lay out in more than one step, each one a resize: wait for the last one to land.
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        out["requested_height"] = int(frame.evaluate("document.body.dataset.requestedHeight"))
        out["frame_height"] = page.evaluate(FRAME_HEIGHT)
        if out["frame_height"] == f"{min(4000, max(100, out['requested_height']))}px" or time.monotonic() > deadline:
            break
        page.wait_for_timeout(50)
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACT), full_page=True)
    frame.click("#grow")
    _until(page, f"parseInt({FRAME_HEIGHT}) > {int(out['frame_height'][:-2]) + 400}")
    out["grown_height"] = int(page.evaluate(f"parseInt({FRAME_HEIGHT})"))

    # The host's theme changes: it posts theme_tokens and theme; the SDK follows the latter.
    page.click("#theme-toggle")
    _until(frame, f"{PRIMARY} === {json.dumps(DARK_THEME_TOKENS['--alga-primary'])}")

    # A foreign origin (a popup of the host page) speaks the same protocol to the host and to the frame.
    height_before = page.evaluate(FRAME_HEIGHT)
    ignored_before = int(page.evaluate(f"{HOST}.dataset.ignored"))
    calls_before = stack.runner.invocations()
    with page.expect_popup() as popup_info:
        page.evaluate(f"window.open({json.dumps(stack.foreign_url)}, 'foreign')")
    popup = popup_info.value
    _until(popup, "document.title === 'sent'")
    _until(page, f"Number({HOST}.dataset.ignored) >= {ignored_before + 3}")
    out["foreign_reason"] = page.evaluate(f"{HOST}.dataset.lastIgnored")
    popup.close()
    frame.click("#call-again")  # a round trip after the forged messages: they were delivered before its answer
    frame.wait_for_selector("#post-result[data-state='ok']")
    frame.wait_for_selector("#get-result[data-state='ok']")
    out["after_foreign"] = {
        "height": page.evaluate(FRAME_HEIGHT),
        "nav_path": page.evaluate(f"{HOST}.dataset.navPath || null"),
        "guest_calls": stack.runner.invocations() - calls_before,
        "primary_in_frame": frame.evaluate(PRIMARY),
        "route_in_frame": frame.inner_text("#route"),
    }
    out["height_before_foreign"] = height_before

    # Storage: the host page and the other extension keep secrets; this extension's document tries to read them.
    page.evaluate("localStorage.setItem('host-secret', 'h'); document.cookie = 'host_cookie=h; path=/'")
    other = context.new_page()
    other.goto(f"{stack.gateway.url}/msp/extensions/{REF_UI_OTHER_ID}")
    other.wait_for_selector("#ext-host[data-bridge='ready']")
    other_frame = other.wait_for_selector("iframe.ext-frame").content_frame()
    out["other_origin_in_frame"] = other_frame.evaluate("window.origin")
    other_frame.evaluate("localStorage.setItem('other-secret', 'b'); document.cookie = 'other_cookie=b; path=/'")
    out["other_reads_own"] = other_frame.evaluate("localStorage.getItem('other-secret')")
    out["probes"] = frame.evaluate(PROBES, {"hostKey": "host-secret", "otherKey": "other-secret"})
    # The other extension's origin opened from this one (allow-popups): its window is there, its contents not.
    with context.expect_page() as opened:
        frame.evaluate(f"window.__other = window.open({json.dumps(other_origin + '/')}, 'other-ext')")
    popup = opened.value
    popup.wait_for_load_state()
    out["popup_url"] = popup.url
    out["popup_probes"] = frame.evaluate("""() => {
      const attempt = (fn) => { try { return String(fn()); } catch (e) { return 'blocked:' + e.name; } };
      return {
        document: attempt(() => window.__other.document.title),
        storage: attempt(() => window.__other.localStorage.getItem('other-secret')),
        cookie: attempt(() => window.__other.document.cookie),
      };
    }""")
    popup.close()
    other.close()
    return out


async def test_reference_style_ui_in_isolated_origin_mode(isolated_stack: IsolatedStack, tmp_path: Path) -> None:
    stack = isolated_stack
    out = await trio.to_thread.run_sync(
        _with_profile_page, stack.gateway.url, stack.token, tmp_path / "profile",
        lambda page, context: _drive(page, context, stack))

    origin = stack.origin(REF_UI_ID)
    assert out["mode"] == "isolated"
    assert out["sandbox"] == ISOLATED_SANDBOX
    assert out["origin_in_frame"] == origin  # a real origin of its own, not the host's, not "null"
    assert out["src"].startswith(f"{origin}/?parentOrigin={stack.gateway.url.replace(':', '%3A').replace('/', '%2F')}")
    assert f"&_h=sha256%3A{stack.hex}" in out["src"]
    assert out["module_scripts"] == [["module", "/assets/app.js"]]  # loaded: bootstrap below ran it

    assert out["primary_in_frame"] == DEFAULT_THEME_TOKENS["--alga-primary"]
    assert out["route"] == "/start"
    assert out["session"] == "no token (apiproxy only)"
    assert out["parent_in_frame"] == stack.gateway.url

    assert out["get_state"] == "ok", out["get_text"]
    got = json.loads(out["get_text"])
    assert (got["method"], got["url"], got["bodyBase64"]) == ("GET", "/echo?from=module", None)
    assert out["post_state"] == "ok", out["post_text"]
    posted = json.loads(out["post_text"])
    assert (posted["method"], posted["url"]) == ("POST", "/echo")
    assert json.loads(base64.b64decode(posted["bodyBase64"])) == {"hello": "from a module"}
    assert posted["headers"]["content-type"] == "application/octet-stream"  # as the reference host sends it

    assert out["frame_height"] == f"{min(4000, max(100, out['requested_height']))}px"
    assert out["grown_height"] > int(out["frame_height"][:-2]) + 400

    assert out["foreign_reason"] == "source"
    after = out["after_foreign"]
    assert after["height"] == out["height_before_foreign"]
    assert after["nav_path"] is None
    assert after["guest_calls"] == 2  # the click's GET and POST only, not the forged apiproxy
    assert after["primary_in_frame"] == DARK_THEME_TOKENS["--alga-primary"]  # the forged theme was dropped
    assert after["route_in_frame"] == "/start"  # and the forged bootstrap

    assert out["other_origin_in_frame"] == stack.origin(REF_UI_OTHER_ID)
    assert out["other_reads_own"] == "b"
    probes = out["probes"]
    assert probes["origin"] == origin, out
    assert probes["ownStorageKeys"] == ""
    assert probes["hostSecretInOwnStorage"] is None
    assert probes["otherSecretInOwnStorage"] is None
    assert "host_cookie" not in probes["ownCookies"]
    assert "other_cookie" not in probes["ownCookies"]
    assert "alga_session" not in probes["ownCookies"]
    for name in ("parentDocument", "parentStorage", "parentCookie", "topLocation"):
        assert probes[name] == "blocked:SecurityError", (name, probes[name])
    assert out["popup_url"].startswith(stack.origin(REF_UI_OTHER_ID))
    assert out["popup_probes"] == {"document": "blocked:SecurityError", "storage": "blocked:SecurityError",
                                   "cookie": "blocked:SecurityError"}
    assert ARTIFACT.stat().st_size > 10_000
