"""The host page and the bridge's static files over HTTP (no browser): who gets the page, what it carries."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import httpx

from contract import UiUrlSigner
from gateway_quart._host_page import DEFAULT_THEME_TOKENS, STATIC_DIR

from ._servers import ROOT, UI_KEY, publish_tree, write_tree
from .conftest import IsolatedStack, Stack


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.config: str | None = None
        self._in_config = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            found = dict(attrs)
            self.scripts.append(found)
            self._in_config = found.get("id") == "ext-host-config"

    def handle_endtag(self, tag: str) -> None:
        self._in_config = False

    def handle_data(self, data: str) -> None:
        if self._in_config:
            self.config = (self.config or "") + data


async def _page(stack: Stack, token: str, path: str = "/msp/extensions/kitchen-sink") -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.gateway.url, timeout=10) as browser:
        login = await browser.post("/api/session", json={"token": token})
        assert login.status_code == 200, login.text
        return await browser.get(path)


async def test_host_page_for_an_installed_extension(stack: Stack) -> None:
    resp = await _page(stack, stack.token, "/msp/extensions/kitchen-sink?path=/reports/7")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    runner_origin = stack.runner.url
    csp = resp.headers["content-security-policy"]
    assert f"frame-src {runner_origin};" in csp
    assert "script-src 'self';" in csp
    assert "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["cache-control"] == "no-store"

    parser = _Scripts()
    parser.feed(resp.text)
    # No inline script: every <script> loads a file, except the inert JSON data block.
    for script in parser.scripts:
        assert script.get("src") or script.get("type") == "application/json", script
    assert {"type": "module", "src": "/static/host-page.js"} in parser.scripts
    assert parser.config is not None
    config = json.loads(parser.config)
    assert config["extensionId"] == "kitchen-sink"
    assert config["contentHash"] == f"sha256:{stack.hex}"
    assert config["tenantId"] == "acme"
    assert config["runnerBase"] == runner_origin
    assert config["entry"] == "index.html"
    assert config["apiBase"] == "/api/ext/kitchen-sink"
    assert config["navigationPath"] == "/reports/7"
    # The shared-origin frame URL is signed for this tenant, extension and hash (the runner checks it).
    assert UiUrlSigner(UI_KEY).verify(config["uiToken"], extension="kitchen-sink", hex_digest=stack.hex) == "acme"
    assert config["themes"]["light"] == dict(DEFAULT_THEME_TOKENS)
    assert set(config["session"]) == {"tenant_id", "user_id", "user_name", "user_type", "extension_id", "install_id"}
    assert not re.search(r"agt_|alga_session", resp.text)  # no credential in the page


async def test_hostile_navigation_paths_fall_back_to_root(stack: Stack) -> None:
    for path in ("//evil.example/x", "javascript:alert(1)", "/a\\b", "x" * 2000):
        resp = await _page(stack, stack.token, f"/msp/extensions/kitchen-sink?path={path}")
        parser = _Scripts()
        parser.feed(resp.text)
        assert parser.config is not None
        assert json.loads(parser.config)["navigationPath"] == "/", path
    resp = await _page(stack, stack.token, "/msp/extensions/kitchen-sink?path=/</script><script>alert(1)</script>")
    assert "</script><script>alert(1)" not in resp.text


async def test_host_page_refusals(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway.url, timeout=10) as anonymous:
        resp = await anonymous.get("/msp/extensions/kitchen-sink")
        assert (resp.status_code, resp.json()["error"]) == (401, "unauthorized")
    resp = await _page(stack, stack.other_token)  # globex has no install
    assert (resp.status_code, resp.json()["error"]) == (404, "not_installed")
    resp = await _page(stack, stack.token, "/msp/extensions/not-there")
    assert resp.status_code == 404
    resp = await _page(stack, stack.token, "/msp/extensions/..%2f..")
    assert resp.status_code == 404
    # A viewer (extension:read) may open the page.
    assert (await _page(stack, stack.viewer_token)).status_code == 200


async def test_an_extension_without_ui_has_no_page(stack: Stack, tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "no-ui", {}, manifest={"name": "com.example.headless", "ui": None})
    hex_digest = await publish_tree(stack.gateway.store_dir, tree)
    await stack.gateway.register_and_install(hex_digest, "headless", "acme")
    resp = await _page(stack, stack.token, "/msp/extensions/headless")
    assert (resp.status_code, resp.json()["error"]) == (404, "no_ui")


async def test_static_bridge_files(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway.url, timeout=10) as client:
        for name, content_type in (("ext-bridge.js", "text/javascript; charset=utf-8"),
                                   ("ext-iframe.js", "text/javascript; charset=utf-8"),
                                   ("host-page.js", "text/javascript; charset=utf-8"),
                                   ("host-page.css", "text/css; charset=utf-8")):
            resp = await client.get(f"/static/{name}")
            assert resp.status_code == 200, name
            assert resp.headers["content-type"] == content_type
            assert resp.headers["x-content-type-options"] == "nosniff"
            assert resp.content == (STATIC_DIR / name).read_bytes()
            again = await client.get(f"/static/{name}", headers={"if-none-match": resp.headers["etag"]})
            assert again.status_code == 304
        for name in ("nope.js", "..%2f_app.py", "%2e%2e/_app.py", "../_app.py", "sub/x.js"):
            resp = await client.get(f"/static/{name}")
            assert resp.status_code == 404, name
            assert b"create_app" not in resp.content


def test_the_sample_ships_the_current_author_helper() -> None:
    """Authors copy ext-iframe.js into their bundle (the iframe's CSP allows only its own origin's scripts)."""
    shipped = ROOT / "samples" / "js-kitchen-sink" / "ui" / "ext-iframe.js"
    assert shipped.read_bytes() == (STATIC_DIR / "ext-iframe.js").read_bytes()


def test_the_sample_ui_has_no_inline_script() -> None:
    ui = ROOT / "samples" / "js-kitchen-sink" / "ui"
    parser = _Scripts()
    parser.feed((ui / "index.html").read_text())
    assert parser.scripts == [{"src": "ext-iframe.js"}, {"src": "app.js"}]
    assert not re.search(r"\son[a-z]+\s*=", (ui / "index.html").read_text())  # no inline event handlers
    assert all((ui / str(s["src"])).exists() for s in parser.scripts)


async def test_host_page_in_isolated_origin_mode(isolated_stack: IsolatedStack) -> None:
    """With EXT_UI_ORIGIN_TEMPLATE the page frames the install's own origin, and only that one."""
    stack = isolated_stack
    async with httpx.AsyncClient(base_url=stack.gateway.url, timeout=10) as browser:
        assert (await browser.post("/api/session", json={"token": stack.token})).status_code == 200
        resp = await browser.get("/msp/extensions/ref-ui")
    assert resp.status_code == 200, resp.text
    origin = stack.origin("ref-ui")
    assert f"frame-src {origin};" in resp.headers["content-security-policy"]
    parser = _Scripts()
    parser.feed(resp.text)
    assert parser.config is not None
    config = json.loads(parser.config)
    assert (config["uiMode"], config["uiOrigin"]) == ("isolated", origin)
    assert config["uiToken"] is None  # an origin of its own is not the signed path route
    assert config["sandbox"] == "allow-scripts allow-same-origin allow-forms allow-popups"
    assert config["apiBase"] == "/api/ext/ref-ui"
    # The runner serves that origin's index (Host header: httpx need not resolve *.localhost).
    async with httpx.AsyncClient(base_url=stack.runner.url, timeout=10) as client:
        page = await client.get("/?parentOrigin=x", headers={"host": origin.removeprefix("http://")})
        asset = await client.get("/assets/app.js", headers={"host": origin.removeprefix("http://")})
    assert (page.status_code, asset.status_code) == (200, 200)
    assert '<script type="module" src="/assets/app.js">' in page.text
    assert "frame-ancestors" in page.headers["content-security-policy"]
