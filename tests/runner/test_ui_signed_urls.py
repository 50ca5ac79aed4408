"""Signed ``/ext-ui`` URLs on a real runner route: the gateway's token is verified with no round trip; a missing,
expired or foreign token is the very 404 (status, body, headers) of a hash that does not exist, and the route no
longer answers ``?tenant=`` questions (the install oracle)."""

# ruff: noqa: F811 - test parameters named after the imported fixtures they receive
from __future__ import annotations

import time
import urllib.parse
from pathlib import Path

import httpx

from contract import UiUrlSigner, signed_ui_path
from runner_trio._ui_paths import SHARED_ORIGIN_SANDBOX
from runner_trio._ui_route import InstallValidator
from tests.browser._servers import UI_KEY, UiRunner, write_tree

# The fixtures of test_ui_route (servers, make_runner), imported so that pytest finds them here.
from .test_ui_route import FILES, INDEX, RunnerFactory, get, make_runner, servers  # noqa: F401

EXT = "ui-ext"
UNKNOWN = "0" * 64
IGNORED_HEADERS = frozenset({"date"})


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def _signed_runner(make_runner: RunnerFactory, tmp_path: Path, **settings: object) -> tuple[UiRunner, str]:
    runner = await make_runner(ui_signing_key=UI_KEY, ui_strict_validation=True, **settings)
    return runner, await runner.publish(write_tree(tmp_path / "tree", FILES))


def _url(hex_digest: str, token: str, path: str = "index.html", ext: str = EXT) -> str:
    return signed_ui_path(ext, f"{hex_digest}", token, path)


def _token(hex_digest: str, *, tenant: str = "acme", ext: str = EXT, ttl_s: float = 60, key: str = UI_KEY,
           clock: Clock | None = None) -> str:
    signer = UiUrlSigner(key, clock=clock) if clock is not None else UiUrlSigner(key)
    return signer.issue(tenant=tenant, extension=ext, hex_digest=hex_digest, ttl_s=ttl_s)


def _shape(resp: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    return resp.status_code, resp.content, sorted((k, v) for k, v in resp.headers.items() if k not in IGNORED_HEADERS)


async def test_a_signed_url_serves_the_page_and_its_relative_assets(make_runner: RunnerFactory, tmp_path: Path) -> None:
    runner, hex_digest = await _signed_runner(make_runner, tmp_path)
    page = _url(hex_digest, _token(hex_digest))
    resp = await get(runner, page)
    assert (resp.status_code, resp.text) == (200, INDEX)
    csp = resp.headers["content-security-policy"]
    assert csp.endswith(f"; {SHARED_ORIGIN_SANDBOX}")
    assert "allow-same-origin" not in csp
    # index.html says <script src='app.js'>: the browser resolves it under the token, which therefore survives.
    asset = urllib.parse.urljoin(page, "app.js")
    assert "/~t/" in asset
    resp = await get(runner, asset)
    assert (resp.status_code, resp.text) == (200, FILES["ui/app.js"])
    assert "content-security-policy" not in resp.headers
    # Without its slash the token segment redirects to it (so relative URLs resolve); a bad token does not.
    bare = page.removesuffix("/index.html")
    resp = await get(runner, bare + "?path=%2Fx")
    assert (resp.status_code, resp.headers["location"]) == (308, bare + "/?path=%2Fx")
    assert (await get(runner, _url(hex_digest, "forged").removesuffix("/index.html"))).status_code == 404


async def test_missing_expired_or_foreign_tokens_answer_as_an_unknown_hash(
    make_runner: RunnerFactory, tmp_path: Path
) -> None:
    runner, hex_digest = await _signed_runner(make_runner, tmp_path)
    other = await runner.publish(write_tree(tmp_path / "other", {**FILES, "ui/app.js": "console.log(2);"}))
    # "No such hash": a valid token, for a hash nobody published.
    unknown = await get(runner, _url(UNKNOWN, _token(UNKNOWN)))
    assert (unknown.status_code, unknown.json()) == (404, {"code": "not_found"})
    past = Clock()
    past.now -= 3600
    token = _token(hex_digest)
    body, _, signature = token.rpartition(".")
    refused = {
        "no token": f"/ext-ui/{EXT}/sha256:{hex_digest}/index.html",
        "the old ?tenant= question": f"/ext-ui/{EXT}/sha256:{hex_digest}/index.html?tenant=acme",
        "no token, an asset": f"/ext-ui/{EXT}/sha256:{hex_digest}/app.js",
        "an empty token": f"/ext-ui/{EXT}/sha256:{hex_digest}/~t//index.html",
        "expired": _url(hex_digest, _token(hex_digest, clock=past)),
        "another extension's": _url(hex_digest, _token(hex_digest, ext="other-ext")),
        "used on another extension": _url(hex_digest, token, ext="other-ext"),
        "another hash's": _url(hex_digest, _token(other)),
        "used on another hash": _url(other, token),
        "another key's": _url(hex_digest, _token(hex_digest, key="not-the-ui-key-0123")),
        "a cut signature": _url(hex_digest, f"{body}.{signature[:-2]}"),
        "garbage": _url(hex_digest, "x" * 40),
        "an unknown hash, no token": f"/ext-ui/{EXT}/sha256:{UNKNOWN}/index.html",
    }
    for what, target in refused.items():
        assert _shape(await get(runner, target)) == _shape(unknown), what
        assert _shape(await get(runner, target, method="HEAD"))[0] == 404, what
    # The same token is good for its own (extension, hash).
    assert (await get(runner, _url(hex_digest, token))).status_code == 200


async def test_the_route_asks_the_gateway_nothing(make_runner: RunnerFactory, tmp_path: Path) -> None:
    """The install oracle is gone: no ?tenant= question reaches the gateway, whatever is asked."""
    asked: list[httpx.Request] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(200, json={"valid": True})

    validator = InstallValidator("http://gw.test", "tok", transport=httpx.MockTransport(gateway))
    runner, hex_digest = await _signed_runner(make_runner, tmp_path, validator=validator)
    for tenant in ("acme", "globex", "nobody"):
        resp = await get(runner, f"/ext-ui/{EXT}/sha256:{hex_digest}/index.html?tenant={tenant}")
        assert resp.status_code == 404
    assert (await get(runner, _url(hex_digest, _token(hex_digest)))).status_code == 200
    assert asked == []


async def test_without_a_key_strict_mode_serves_nothing(make_runner: RunnerFactory, tmp_path: Path) -> None:
    runner = await make_runner(ui_strict_validation=True)
    hex_digest = await runner.publish(write_tree(tmp_path / "tree", FILES))
    for target in (_url(hex_digest, _token(hex_digest)), f"/ext-ui/{EXT}/sha256:{hex_digest}/index.html?tenant=a"):
        resp = await get(runner, target)
        assert (resp.status_code, resp.json()) == (404, {"code": "not_found"})
