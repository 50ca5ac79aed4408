"""``GET /ext-ui/{ext}/{hash}/{path}`` over real Hypercorn, a real BundleService (file store + disk cache) and,
for strict mode, the real gateway's ``/api/installs/validate``."""

from __future__ import annotations

import hashlib
import random
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import zstandard
from quart_trio import QuartTrio

import bundles
from bundles.store import BundleLayout
from contract import UiUrlSigner, signed_ui_path
from runner_trio import Settings
from runner_trio._ui_paths import DEFAULT_CSP, SHARED_ORIGIN_SANDBOX
from runner_trio._ui_route import InstallValidator, create_ui_blueprint
from tests.browser._servers import (
    UI_KEY,
    UiRunner,
    publish_tree,
    start_ui_runner,
    write_tree,
)
from tests.gateway._helpers import Server

BIG = random.Random(7).randbytes(300_000)
INDEX = "<!doctype html><title>ui</title><script src='app.js'></script>"
FILES: dict[str, bytes | str] = {
    "ui/index.html": INDEX,
    "ui/app.js": "console.log('app');\n",
    "ui/style.css": "body { color: red }\n",
    "ui/data.json": '{"a": 1}',
    "ui/logo.svg": "<svg xmlns='http://www.w3.org/2000/svg'/>",
    "ui/font.woff2": b"wOF2\x00\x01",
    "ui/blob.qqq": b"\x01\x02\x03",
    "ui/big.bin": BIG,
    "ui/docs/index.html": "<!doctype html><title>docs</title>",
    "ui/assets/a.txt": "plain",
}
SHARED_CSP = f"{DEFAULT_CSP}; {SHARED_ORIGIN_SANDBOX}"
"""The shared origin's HTML always carries the sandbox: opened top-level, a UI page gets an opaque origin."""
SECRET_MARKERS = (b"com.example.ui", b"\x00asm", b"root:", b'"state"')

RunnerFactory = Callable[..., Awaitable[UiRunner]]


@dataclass
class Servers:
    """Servers of one test, in a nursery of this fixture's own: they stop gracefully (lifespan shutdown runs)
    before the nursery goes, which pytest-trio's ``nursery`` fixture (cancelled when the test returns) cannot do."""

    nursery: trio.Nursery
    started: list[Server] = field(default_factory=list)


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    async with trio.open_nursery() as nursery:
        handle = Servers(nursery)
        yield handle
        with trio.fail_after(10):
            for server in handle.started:
                await server.close()


@pytest.fixture
async def make_runner(tmp_path: Path, servers: Servers) -> RunnerFactory:
    counter = 0

    async def factory(**kwargs: Any) -> UiRunner:
        nonlocal counter
        counter += 1
        runner = await start_ui_runner(servers.nursery, tmp_path / f"runner{counter}", **kwargs)
        servers.started.insert(0, runner.server)  # runners stop before the gateway their validators call
        return runner

    return factory


@pytest.fixture
async def published(make_runner: RunnerFactory, tmp_path: Path) -> tuple[UiRunner, str]:
    runner = await make_runner()
    return runner, await runner.publish(write_tree(tmp_path / "tree", FILES))


def ui(hex_digest: str, path: str = "", ext: str = "ui-ext", **query: str) -> str:
    url = f"/ext-ui/{ext}/sha256:{hex_digest}/{path}"
    return f"{url}?{urllib.parse.urlencode(query)}" if query else url


async def get(runner: UiRunner, target: str, *, method: str = "GET", **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=runner.url, timeout=10) as client:
        return await client.request(method, target, headers=headers)


async def raw_request(base_url: str, target: bytes) -> tuple[int, bytes]:
    """Send ``target`` exactly as given (no client-side normalization or encoding); return (status, body)."""
    parts = urllib.parse.urlsplit(base_url)
    assert parts.hostname is not None
    assert parts.port is not None
    data = b""
    with trio.fail_after(10):
        async with await trio.open_tcp_stream(parts.hostname, parts.port) as stream:
            await stream.send_all(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            # Read the head, then exactly content-length bytes (the server may keep the socket open a while).
            while b"\r\n\r\n" not in data and (chunk := await stream.receive_some(65536)):
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            fields = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
            length = int(fields.get("content-length", "0"))
            while len(body) < length and (chunk := await stream.receive_some(65536)):
                body += chunk
    return int(lines[0].split(" ", 2)[1]), body


# -- headers, types, CSP ------------------------------------------------------------------------------------------


async def test_files_are_served_with_types_etag_and_immutable_caching(published: tuple[UiRunner, str]) -> None:
    runner, hex_digest = published
    expected = {
        "index.html": "text/html; charset=utf-8",
        "app.js": "text/javascript; charset=utf-8",
        "style.css": "text/css; charset=utf-8",
        "data.json": "application/json",
        "logo.svg": "image/svg+xml",
        "font.woff2": "font/woff2",
        "blob.qqq": "application/octet-stream",
    }
    for name, content_type in expected.items():
        resp = await get(runner, ui(hex_digest, name))
        raw = FILES[f"ui/{name}"]
        body = raw.encode() if isinstance(raw, str) else raw
        assert resp.status_code == 200, (name, resp.text)
        assert resp.content == body
        assert resp.headers["content-type"] == content_type
        assert resp.headers["content-length"] == str(len(body))
        assert resp.headers["etag"] == f'"sha256-{hashlib.sha256(body).hexdigest()}"'
        assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["accept-ranges"] == "bytes"
        if name == "index.html":
            assert resp.headers["content-security-policy"] == SHARED_CSP
        else:
            assert "content-security-policy" not in resp.headers


async def test_csp_settings(make_runner: RunnerFactory, tmp_path: Path) -> None:
    runner = await make_runner(ui_frame_ancestors="https://app.example.test")
    hex_digest = await runner.publish(write_tree(tmp_path / "t", FILES))
    resp = await get(runner, ui(hex_digest, "index.html"))
    assert resp.headers["content-security-policy"] == (
        f"{DEFAULT_CSP}; frame-ancestors https://app.example.test; {SHARED_ORIGIN_SANDBOX}"
    )

    runner = await make_runner(ui_content_security_policy="default-src 'none';",
                               ui_frame_ancestors="'self' https://x.test")
    hex_digest = await runner.publish(write_tree(tmp_path / "t", FILES))
    resp = await get(runner, ui(hex_digest, "docs/"))
    assert resp.headers["content-security-policy"] == (
        f"default-src 'none'; frame-ancestors 'self' https://x.test; {SHARED_ORIGIN_SANDBOX}"
    )


async def test_if_none_match_answers_304(published: tuple[UiRunner, str]) -> None:
    runner, hex_digest = published
    first = await get(runner, ui(hex_digest, "app.js"))
    etag = first.headers["etag"]
    for condition in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        resp = await get(runner, ui(hex_digest, "app.js"), **{"if-none-match": condition})
        assert resp.status_code == 304, condition
        assert resp.content == b""
        assert resp.headers["etag"] == etag
        assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
    resp = await get(runner, ui(hex_digest, "app.js"), **{"if-none-match": '"sha256-0000"'})
    assert resp.status_code == 200
    assert resp.content == first.content


async def test_head_sends_headers_only(published: tuple[UiRunner, str]) -> None:
    runner, hex_digest = published
    resp = await get(runner, ui(hex_digest, "big.bin"), method="HEAD")
    assert resp.status_code == 200
    assert resp.content == b""
    assert resp.headers["content-length"] == str(len(BIG))
    assert resp.headers["etag"] == f'"sha256-{hashlib.sha256(BIG).hexdigest()}"'
    resp = await get(runner, ui(hex_digest, "index.html"), method="HEAD")
    assert resp.headers["content-security-policy"] == SHARED_CSP
    assert (await get(runner, ui(hex_digest, "missing.js"), method="HEAD")).status_code == 404


# -- Range ----------------------------------------------------------------------------------------------------------


async def test_range_requests(published: tuple[UiRunner, str]) -> None:
    runner, hex_digest = published
    size = len(BIG)
    cases = {
        "bytes=0-99": (0, 99),
        "bytes=100000-250000": (100_000, 250_000),  # spans several streamed chunks
        "bytes=-10": (size - 10, size - 1),
        f"bytes={size - 5}-": (size - 5, size - 1),
        f"bytes=10-{size * 2}": (10, size - 1),
    }
    for header, (start, end) in cases.items():
        resp = await get(runner, ui(hex_digest, "big.bin"), range=header)
        assert resp.status_code == 206, header
        assert resp.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert resp.headers["content-length"] == str(end - start + 1)
        assert resp.content == BIG[start : end + 1]

    resp = await get(runner, ui(hex_digest, "big.bin"), range=f"bytes={size}-")
    assert resp.status_code == 416
    assert resp.headers["content-range"] == f"bytes */{size}"

    # Several ranges, a malformed header, or If-Range naming another version: the whole file.
    etag = (await get(runner, ui(hex_digest, "big.bin"), method="HEAD")).headers["etag"]
    for headers in ({"range": "bytes=0-1,5-6"}, {"range": "items=0-1"},
                    {"range": "bytes=0-1", "if-range": '"sha256-old"'}):
        resp = await get(runner, ui(hex_digest, "big.bin"), **headers)
        assert resp.status_code == 200, headers
        assert resp.content == BIG
    resp = await get(runner, ui(hex_digest, "big.bin"), range="bytes=0-1", **{"if-range": etag})
    assert (resp.status_code, resp.content) == (206, BIG[:2])


async def test_if_range_is_a_strong_comparison(published: tuple[UiRunner, str]) -> None:
    runner, hex_digest = published
    etag = (await get(runner, ui(hex_digest, "big.bin"), method="HEAD")).headers["etag"]
    # A weak tag or a date never satisfies If-Range: the whole file, not a part of some other version.
    for condition in (f"W/{etag}", "Sun, 06 Dec 2026 04:00:00 GMT", ""):
        resp = await get(runner, ui(hex_digest, "big.bin"), range="bytes=0-1", **{"if-range": condition})
        assert (resp.status_code, resp.content) == (200, BIG), condition
    resp = await get(runner, ui(hex_digest, "big.bin"), range="bytes=5-1")
    assert (resp.status_code, resp.headers["content-range"]) == (416, f"bytes */{len(BIG)}")


async def test_large_file_streams_whole(published: tuple[UiRunner, str]) -> None:
    runner, hex_digest = published
    resp = await get(runner, ui(hex_digest, "big.bin"))
    assert resp.status_code == 200
    assert hashlib.sha256(resp.content).digest() == hashlib.sha256(BIG).digest()


# -- SPA fallback ---------------------------------------------------------------------------------------------------


async def test_spa_fallback(published: tuple[UiRunner, str]) -> None:
    runner, hex_digest = published
    docs = FILES["ui/docs/index.html"]
    for path, body in {
        "": INDEX,
        "index.html": INDEX,
        "settings": INDEX,  # a client-side route
        "settings/profile/42": INDEX,
        "docs": docs,  # a directory with its own index
        "docs/": docs,
        "assets": INDEX,  # a directory without one
    }.items():
        resp = await get(runner, ui(hex_digest, path))
        assert (resp.status_code, resp.text) == (200, body), path
    for path in ("missing.js", "assets/missing.png", "docs/x.css"):
        resp = await get(runner, ui(hex_digest, path))
        assert resp.status_code == 404, path
        assert resp.json() == {"code": "not_found"}
        assert resp.headers["x-content-type-options"] == "nosniff"

    # Without the trailing slash: a redirect to it (query kept), so relative links in index.html resolve.
    resp = await get(runner, f"/ext-ui/ui-ext/sha256:{hex_digest}?tenant=acme")
    assert resp.status_code == 308
    assert resp.headers["location"].endswith(f"/ext-ui/ui-ext/sha256:{hex_digest}/?tenant=acme")


async def test_bare_hex_serves_like_the_prefixed_hash(published: tuple[UiRunner, str]) -> None:
    """``/v1/execute`` takes 64 bare hex digits; a URL an author builds from the same hash works here too."""
    runner, hex_digest = published
    prefixed = await get(runner, ui(hex_digest, "app.js"))
    for digest in (hex_digest, hex_digest.upper()):
        resp = await get(runner, f"/ext-ui/ui-ext/{digest}/app.js")
        assert (resp.status_code, resp.content) == (200, prefixed.content)
        assert resp.headers["etag"] == prefixed.headers["etag"]


async def test_bad_ids_and_unknown_bundles_are_404(published: tuple[UiRunner, str]) -> None:
    runner, hex_digest = published
    for target in (
        f"/ext-ui/ui-ext/{hex_digest[:-1]}/index.html",
        f"/ext-ui/ui-ext/sha:{hex_digest}/index.html",
        f"/ext-ui/ui-ext/%20{hex_digest}/index.html",
        f"/ext-ui/ui-ext/sha256:{hex_digest[:-1]}/index.html",
        f"/ext-ui/-bad/sha256:{hex_digest}/index.html",
        f"/ext-ui/ui-ext/sha256:{'0' * 64}/index.html",  # never published
    ):
        resp = await get(runner, target)
        assert (resp.status_code, resp.json()) == (404, {"code": "not_found"}), target


# -- hostile paths ---------------------------------------------------------------------------------------------------


HOSTILE = [
    b"../manifest.json",
    b"../../../../../../etc/passwd",
    b"docs/../../manifest.json",
    b"%2e%2e/manifest.json",
    b"%2E%2E%2Fmanifest.json",
    b"..%2fmanifest.json",
    b"docs%2f..%2f..%2fmanifest.json",
    b".%2e/signature.json",
    b"..\\manifest.json",
    b"%5c..%5cmanifest.json",
    b"index.html%00.js",
    b"%00",
    b"/etc/passwd",  # -> //etc/passwd after the hash: an absolute path
    b"%2fetc%2fpasswd",
    b"%c0%ae%c0%ae/manifest.json",  # overlong UTF-8 '..'
    b"%c0%af..%c0%afmanifest.json",  # overlong UTF-8 '/'
    b"%e0%80%ae%e0%80%ae/manifest.json",
    b"%ff%fe",
    b".hidden",
    b"docs/.git/config",
    b"C:%5cwindows%5cwin.ini",
    b"a%0d%0aSet-Cookie:%20x=1",
    b"%u002e%u002e/manifest.json",
]


@pytest.mark.parametrize("tail", HOSTILE, ids=lambda t: t.decode("latin-1"))
async def test_hostile_paths_are_refused(published: tuple[UiRunner, str], tail: bytes) -> None:
    runner, hex_digest = published
    status, body = await raw_request(runner.url, f"/ext-ui/ui-ext/sha256:{hex_digest}/".encode() + tail)
    assert status in (400, 404), (status, body[:200])
    for marker in SECRET_MARKERS:
        assert marker not in body


@pytest.mark.parametrize(
    "target",
    [
        b"/ext-ui/ui-ext/sha256:HASH/a\x00b",  # a raw NUL never reaches the app
        b"/ext-ui/..%2f..%2fui-ext/sha256:HASH/index.html",
        b"/ext-ui/ui-ext%2f..%2fx/sha256:HASH/index.html",
        b"/ext-ui/ui-ext/sha256:HASH%2f..%2f..%2f/manifest.json",
        b"/ext-ui/ui-ext/..%2fsha256:HASH/index.html",
    ],
)
async def test_hostile_targets_outside_the_path(published: tuple[UiRunner, str], target: bytes) -> None:
    runner, hex_digest = published
    status, body = await raw_request(runner.url, target.replace(b"HASH", hex_digest.encode()))
    assert status in (400, 404), (status, body[:200])
    for marker in SECRET_MARKERS:
        assert marker not in body


async def test_a_clean_raw_request_works(published: tuple[UiRunner, str]) -> None:
    """The raw client of the hostile tests does reach files (so their refusals are the route's doing)."""
    runner, hex_digest = published
    assert await raw_request(runner.url, f"/ext-ui/ui-ext/sha256:{hex_digest}/app.js".encode()) == (
        200, b"console.log('app');\n")
    status, _ = await raw_request(runner.url, f"/ext-ui/ui-ext/sha256%3A{hex_digest}/caf%C3%A9".encode())
    assert status == 200  # an encoded ':' in the hash and a UTF-8 route are fine


# -- bundle failures, cache behaviour --------------------------------------------------------------------------------


async def test_oversize_asset_is_413(make_runner: RunnerFactory, tmp_path: Path) -> None:
    runner = await make_runner()
    hex_digest = await runner.publish(write_tree(tmp_path / "t", FILES))
    app = QuartTrio("small")
    app.register_blueprint(create_ui_blueprint(bundles=runner.bundles, settings=runner.settings, validator=None,
                                               max_asset_bytes=1000))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        assert (await client.get(ui(hex_digest, "index.html"))).status_code == 200
        resp = await client.get(ui(hex_digest, "big.bin"))
        assert resp.status_code == 413
        assert await resp.get_json() == {"code": "asset_too_large"}


async def test_store_tampering_and_broken_archives(published: tuple[UiRunner, str]) -> None:
    runner, hex_digest = published
    # Bytes under a hash they do not hash to: 502 archive_hash_mismatch.
    stored = runner.store_dir / "sha256" / hex_digest / "bundle.tar.zst"
    other = runner.store_dir / "sha256" / ("f" * 64)
    other.mkdir(parents=True)
    (other / "bundle.tar.zst").write_bytes(stored.read_bytes())
    resp = await get(runner, ui("f" * 64, "index.html"))
    assert (resp.status_code, resp.json()) == (502, {"code": "archive_hash_mismatch"})

    # Bytes that hash right but are no bundle: 500 extract_failed.
    junk = zstandard.ZstdCompressor().compress(b"this is not a tar archive" * 40)
    junk_hex = hashlib.sha256(junk).hexdigest()
    (runner.store_dir / "sha256" / junk_hex).mkdir(parents=True)
    (runner.store_dir / "sha256" / junk_hex / "bundle.tar.zst").write_bytes(junk)
    resp = await get(runner, ui(junk_hex, "index.html"))
    assert (resp.status_code, resp.json()) == (500, {"code": "extract_failed"})


async def test_signature_policy_applies_to_ui(make_runner: RunnerFactory, tmp_path: Path) -> None:
    trusted_private, trusted_public = bundles.generate_private_key()
    other_private, _ = bundles.generate_private_key()
    runner = await make_runner(trust=bundles.TrustBundle.from_pem(trusted_public))

    async def publish(name: str, key: bytes | None) -> str:
        tree = write_tree(tmp_path / name, {**FILES, "ui/which.txt": name})
        data = bundles.pack_directory(tree)
        hex_digest = await runner.publish(tree, signature=bundles.sign_bundle(data, key) if key else None)
        assert hashlib.sha256(data).hexdigest() == hex_digest
        return hex_digest

    unsigned = await publish("unsigned", None)
    wrong_key = await publish("wrong", other_private)
    good = await publish("good", trusted_private)
    for hex_digest in (unsigned, wrong_key):
        resp = await get(runner, ui(hex_digest, "index.html"))
        assert (resp.status_code, resp.json()) == (403, {"code": "signature_invalid"})
    resp = await get(runner, ui(good, "which.txt"))
    assert (resp.status_code, resp.text) == (200, "good")


async def test_tenant_scoped_store_keys(make_runner: RunnerFactory, tmp_path: Path) -> None:
    layout = BundleLayout("tenants/{tenant}/extensions/{extension}/sha256/{hex}")
    runner = await make_runner(layout=layout, ui_signing_key=UI_KEY)
    tree = write_tree(tmp_path / "t", FILES)
    hex_digest = await publish_tree(runner.store_dir, tree, layout=layout,
                                    key_context={"tenant": "acme", "extension": "ui-ext"})
    # The signed URL names the tenant, which the store key needs; a ?tenant= query names nothing.
    signer = UiUrlSigner(UI_KEY)

    def signed(tenant: str, path: str) -> str:
        token = signer.issue(tenant=tenant, extension="ui-ext", hex_digest=hex_digest, ttl_s=60)
        return signed_ui_path("ui-ext", hex_digest, token, path)

    assert (await get(runner, ui(hex_digest, "index.html", tenant="acme"))).status_code == 404
    assert (await get(runner, signed("globex", "index.html"))).status_code == 404  # not its key
    assert (await get(runner, signed("acme", "index.html"))).status_code == 200
    assert (await get(runner, signed("acme", "app.js"))).status_code == 200
    assert runner.disk.statistics().entries == 1


async def test_concurrent_misses_fetch_once(published: tuple[UiRunner, str]) -> None:
    runner, hex_digest = published
    statuses: list[int] = []

    async def one(name: str) -> None:
        statuses.append((await get(runner, ui(hex_digest, name))).status_code)

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(one, ["index.html", "app.js", "style.css", "big.bin"][i % 4])
    assert statuses == [200] * 20
    assert runner.disk.statistics().fills == 1
    assert runner.disk.statistics().pinned == 0


async def test_tampered_cache_file_is_refetched(published: tuple[UiRunner, str]) -> None:
    runner, hex_digest = published
    assert (await get(runner, ui(hex_digest, "app.js"))).status_code == 200
    cached = runner.disk.root / hex_digest / "ui" / "app.js"
    cached.chmod(0o644)
    cached.write_text("console.log('evil');\n")  # same length, other bytes
    resp = await get(runner, ui(hex_digest, "app.js"))
    assert (resp.status_code, resp.text) == (200, "console.log('app');\n")
    stats = runner.disk.statistics()
    assert (stats.corrupted, stats.fills) == (1, 2)


async def test_a_started_body_survives_eviction(published: tuple[UiRunner, str]) -> None:
    """The pin covers lookup, verification and open; the open descriptor carries the stream after that."""
    runner, hex_digest = published
    app = QuartTrio("direct")
    app.register_blueprint(create_ui_blueprint(bundles=runner.bundles, settings=runner.settings, validator=None,
                                               chunk_bytes=4096))
    async with app.test_request_context(ui(hex_digest, "big.bin")):
        response = await app.full_dispatch_request()
    assert response.status_code == 200
    assert runner.disk.statistics().pinned == 0
    assert await runner.disk.discard(hex_digest)
    assert not (runner.disk.root / hex_digest).exists()
    body = b"".join([chunk async for chunk in response.response])  # type: ignore[union-attr]
    assert body == BIG


# -- strict mode (the signed URLs themselves: test_ui_signed_urls.py) -----------------------------------------------


async def test_strict_mode_off_serves_any_published_bundle(published: tuple[UiRunner, str]) -> None:
    runner, hex_digest = published
    assert runner.settings.ui_strict_validation is False
    resp = await get(runner, ui(hex_digest, "index.html", ext="anything"))
    assert resp.status_code == 200


async def test_strict_mode_is_the_default() -> None:
    assert Settings().ui_strict_validation is True
    assert Settings.from_env({"EXT_STATIC_STRICT_VALIDATION": "false"}).ui_strict_validation is False


async def test_the_validator_sends_the_service_token() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json={"valid": True, "content_hash": "sha256:" + "a" * 64})

    validator = InstallValidator("http://gw.test/", "tok-123", transport=httpx.MockTransport(handler))
    try:
        assert await validator.active_hash("acme", "ui-ext") == "a" * 64
        assert await validator.active_hash("acme", "ui-ext") == "a" * 64
    finally:
        await validator.aclose()
    assert len(seen) == 1
    assert seen[0].headers["authorization"] == "Bearer tok-123"
    assert str(seen[0].url) == "http://gw.test/api/installs/validate?extension=ui-ext&tenant=acme"


async def test_the_validator_ignores_malformed_answers() -> None:
    answers = iter([httpx.Response(200, text="not json"), httpx.Response(200, json={"valid": "yes"}),
                    httpx.Response(503, json={"valid": True}), httpx.Response(200, json={"valid": True}),
                    httpx.Response(200, json={"valid": False})])
    validator = InstallValidator("http://gw.test", "t", transport=httpx.MockTransport(lambda _: next(answers)))
    try:
        results = [await validator.active_hash("acme", "e") for _ in range(6)]
    finally:
        await validator.aclose()
    assert results == [None] * 6
    assert (validator.failures, validator.calls) == (4, 5)  # the last "none" was cached
