"""The blueprint over real HTTP (Hypercorn on a free port) with a real redis-server behind it."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import h11
import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from extctl._commands.tail import open_websocket
from tests._redis import RedisServer

from ._helpers import SESSION_COOKIE, TENANT_A, TENANT_B, add, key, serve_debug

REFERENCE_KEYS = {"ts", "level", "stream", "tenantId", "extensionId", "message", "truncated"}


def ws_url(base: str, query: str) -> str:
    return base.replace("http://", "ws://") + "/api/ext-debug/stream?" + query


@asynccontextmanager
async def connect(
    base: str, query: str, *, token: str | None = "tok-a", headers: list[tuple[bytes, bytes]] | None = None
) -> AsyncIterator[WebSocketConnection]:
    extra = list(headers or [])
    if token is not None:
        extra.append((b"authorization", f"Bearer {token}".encode()))
    # extctl's client: trio-websocket's own open_websocket_url leaks the socket when the server closes first.
    async with open_websocket(ws_url(base, query), extra, connect_timeout=5) as ws:
        yield ws


async def receive(ws: WebSocketConnection, count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    with trio.fail_after(5):
        while len(got) < count:
            item = json.loads(await ws.get_message())
            if item.get("type") != "heartbeat":
                got.append(item)
    return got


async def refusal(base: str, query: str, **kwargs: Any) -> tuple[int, str]:
    """The close code and reason of a refused WebSocket."""
    async with connect(base, query, **kwargs) as ws:
        with trio.fail_after(5), pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
    reason = closed.value.reason
    assert reason is not None
    return reason.code, reason.reason or ""


async def test_websocket_replays_then_streams_live(nursery: trio.Nursery, redis_server: RedisServer) -> None:
    base = await serve_debug(nursery, redis_server.url)
    ext = f"com.acme.ws{id(base)}"
    for i in range(3):
        await add(redis_server.url, key(TENANT_A, ext), tenant=TENANT_A, extension=ext, message=f"old {i}")
    async with connect(base, f"extensionId={ext}&last=2") as ws:
        replayed = await receive(ws, 2)
        assert [e["message"] for e in replayed] == ["old 1", "old 2"]
        assert set(replayed[0]) == REFERENCE_KEYS | {"id"}
        await add(redis_server.url, key(TENANT_A, ext), tenant=TENANT_A, extension=ext, level="error", message="new")
        [live] = await receive(ws, 1)
        assert (live["level"], live["message"]) == ("error", "new")


async def test_the_tenant_comes_from_the_credential_only(nursery: trio.Nursery, redis_server: RedisServer) -> None:
    base = await serve_debug(nursery, redis_server.url)
    ext = "com.acme.tenancy"
    await add(redis_server.url, key(TENANT_A, ext), tenant=TENANT_A, extension=ext, message="a's secret")
    await add(redis_server.url, key(TENANT_B, ext), tenant=TENANT_B, extension=ext, message="b's own")
    # The reference's hole: tenant B asking for tenant A's stream by query parameter.
    assert await refusal(base, f"extensionId={ext}&tenantId={TENANT_A}", token="tok-b") == (4403, "tenant_mismatch")
    # Without the parameter B gets B's stream; naming B's own tenant (any case) is fine too.
    for query in (f"extensionId={ext}", f"extensionId={ext}&tenantId={TENANT_B.upper()}"):
        async with connect(base, query, token="tok-b") as ws:
            [event] = await receive(ws, 1)
            assert (event["tenantId"], event["message"]) == (TENANT_B, "b's own")


@pytest.mark.parametrize(
    ("query", "kwargs", "expected"),
    [
        ("extensionId=com.acme.x", {"token": None}, (4401, "unauthorized")),
        ("extensionId=com.acme.x", {"token": "tok-unknown"}, (4401, "unauthorized")),
        ("extensionId=com.acme.x", {"token": "tok-no-read"}, (4403, "forbidden")),
        ("", {}, (4400, "invalid_request")),
        ("extensionId=a:b", {}, (4400, "invalid_request")),  # ":" would make the key ambiguous across tenants
        ("extensionId=com.acme.x&level=fatal", {}, (4400, "invalid_request")),
        ("extensionId=com.acme.x&stream=stdin", {}, (4400, "invalid_request")),
        ("extensionId=com.acme.x&last=5000", {}, (4400, "invalid_request")),
    ],
)
async def test_websocket_refusals_close_with_4000_plus_status(
    nursery: trio.Nursery, redis_server: RedisServer, query: str, kwargs: dict[str, Any], expected: tuple[int, str]
) -> None:
    base = await serve_debug(nursery, redis_server.url)
    assert await refusal(base, query, **kwargs) == expected


async def test_session_cookie_needs_the_gateways_own_origin(nursery: trio.Nursery, redis_server: RedisServer) -> None:
    base = await serve_debug(nursery, redis_server.url, allowed_origins=["https://console.example"])
    ext = "com.acme.cookie"
    await add(redis_server.url, key(TENANT_A, ext), tenant=TENANT_A, extension=ext, message="hello")
    cookie = (b"cookie", f"{SESSION_COOKIE}=session-a".encode())
    evil = [cookie, (b"origin", b"https://evil.example")]
    assert await refusal(base, f"extensionId={ext}", token=None, headers=evil) == (4403, "origin_not_allowed")
    for origin in (base.encode(), b"https://console.example"):
        async with connect(base, f"extensionId={ext}", token=None, headers=[cookie, (b"origin", origin)]) as ws:
            assert [e["message"] for e in await receive(ws, 1)] == ["hello"]
    # A token in the query string is explicit, not ambient: no origin check (for clients that cannot set headers).
    query = f"extensionId={ext}&token=tok-a"
    async with connect(base, query, token=None, headers=[(b"origin", b"https://evil.example")]) as ws:
        assert [e["message"] for e in await receive(ws, 1)] == ["hello"]


async def test_filters_reach_the_tail(nursery: trio.Nursery, redis_server: RedisServer) -> None:
    base = await serve_debug(nursery, redis_server.url)
    ext = "com.acme.filters"
    k = key(TENANT_A, ext)
    await add(redis_server.url, k, level="info", stream="stdout", request="r1", message="too low")
    await add(redis_server.url, k, level="error", stream="stdout", request="r2", message="other request")
    await add(redis_server.url, k, level="warn", stream="log", request="r1", message="wrong stream")
    await add(redis_server.url, k, level="error", stream="stdout", request="r1", install="i1", message="match")
    async with connect(base, f"extensionId={ext}&requestId=R1&installId=i1&level=warn&stream=stdout") as ws:
        assert [e["message"] for e in await receive(ws, 1)] == ["match"]


async def test_tails_are_capped_and_slots_come_back(nursery: trio.Nursery, redis_server: RedisServer) -> None:
    base = await serve_debug(nursery, redis_server.url, max_tails=1)
    ext = "com.acme.cap"
    async with connect(base, f"extensionId={ext}"):
        await trio.sleep(0.1)
        assert await refusal(base, f"extensionId={ext}") == (4503, "too_many_tails")
    await add(redis_server.url, key(TENANT_A, ext), message="slot is free again")
    with trio.fail_after(5):
        while True:  # the server notices the first client's close, then releases its slot
            async with connect(base, f"extensionId={ext}") as ws:
                try:
                    assert [e["message"] for e in await receive(ws, 1)] == ["slot is free again"]
                    break
                except ConnectionClosed:
                    await trio.sleep(0.05)


async def test_without_redis_the_stream_is_unavailable(nursery: trio.Nursery) -> None:
    base = await serve_debug(nursery, None)
    assert await refusal(base, "extensionId=com.acme.x") == (4503, "debug_stream_unavailable")
    async with httpx.AsyncClient(base_url=base) as client:
        resp = await client.get("/api/ext-debug/stream?extensionId=x", headers={"authorization": "Bearer tok-a"})
    assert resp.status_code == 503
    assert resp.json()["error"] == "debug_stream_unavailable"


class SseReader:
    """An SSE response read with h11 over a trio socket, frame by frame.

    (httpx's streaming iterators are nested async generators; leaving an endless stream early leaves them to
    the garbage collector, which ``filterwarnings = error`` turns into a failure.)
    """

    def __init__(self, stream: trio.SocketStream, conn: h11.Connection, response: h11.Response) -> None:
        self._stream = stream
        self._conn = conn
        self.status = response.status_code
        self.headers = {name.decode().lower(): value.decode() for name, value in response.headers}
        self._buffer = ""

    async def _data(self) -> bytes | None:
        while True:
            event = self._conn.next_event()
            if event is h11.NEED_DATA:
                self._conn.receive_data(await self._stream.receive_some(65536))
            elif isinstance(event, h11.Data):
                return bytes(event.data)
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return None

    async def frames(self, count: int) -> list[dict[str, str]]:
        """The next ``count`` frames that carry data, as {field: value} (comment lines skipped)."""
        frames: list[dict[str, str]] = []
        with trio.fail_after(5):
            while True:
                while "\n\n" in self._buffer:
                    raw, self._buffer = self._buffer.split("\n\n", 1)
                    lines = [line for line in raw.split("\n") if line and not line.startswith(":")]
                    fields = dict(line.split(": ", 1) for line in lines)
                    if "data" in fields:
                        frames.append(fields)
                    if len(frames) == count:
                        return frames
                data = await self._data()
                if data is None:
                    raise AssertionError("the stream ended early")
                self._buffer += data.decode()


@asynccontextmanager
async def sse(base: str, target: str, headers: dict[str, str]) -> AsyncIterator[SseReader]:
    """GET ``target`` as an event stream; the reader is closed (the socket with it) at the end."""
    parts = urlsplit(base)
    stream = await trio.open_tcp_stream(parts.hostname or "", parts.port or 80)
    try:
        conn = h11.Connection(h11.CLIENT)
        request = h11.Request(method="GET", target=target, headers=[("host", parts.netloc), *headers.items()])
        await stream.send_all(conn.send(request) + (conn.send(h11.EndOfMessage()) or b""))
        with trio.fail_after(5):
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Response):
                    break
        reader = SseReader(stream, conn, event)
        assert reader.status == 200
        assert reader.headers["content-type"].startswith("text/event-stream")
        assert reader.headers["cache-control"] == "no-cache, no-transform"
        yield reader
    finally:
        await trio.aclose_forcefully(stream)


async def test_sse_sends_the_references_event_shape(nursery: trio.Nursery, redis_server: RedisServer) -> None:
    base = await serve_debug(nursery, redis_server.url)
    ext = "com.acme.sse"
    k = key(TENANT_A, ext)
    first = await add(redis_server.url, k, tenant=TENANT_A, extension=ext, request="r-1", message="one")
    auth = {"authorization": "Bearer tok-a", "accept": "text/event-stream"}
    async with httpx.AsyncClient(base_url=base) as client:
        url = f"/api/ext-debug/stream?extensionId={ext}"
        async with sse(base, url, auth) as reader:
            [replayed] = await reader.frames(1)
            await add(redis_server.url, k, tenant=TENANT_A, extension=ext, stream="stderr", message="two")
            [live] = await reader.frames(1)
        event = json.loads(replayed["data"])
        assert replayed["id"] == event["id"] == first
        assert set(event) == REFERENCE_KEYS | {"id", "requestId"}
        assert (event["message"], event["requestId"], event["truncated"]) == ("one", "r-1", False)
        assert json.loads(live["data"])["stream"] == "stderr"

        # EventSource reconnects with Last-Event-ID: the stream resumes after it instead of replaying.
        async with sse(base, url, {**auth, "last-event-id": first}) as reader:
            [resumed] = await reader.frames(1)
        assert json.loads(resumed["data"])["message"] == "two"

        refused = await client.get(f"{url}&tenantId={TENANT_B}", headers=auth)
        assert (refused.status_code, refused.json()["error"]) == (403, "tenant_mismatch")
        anonymous = await client.get(url)
        assert (anonymous.status_code, anonymous.json()["error"]) == (401, "unauthorized")


async def test_console_page_is_script_free_html_behind_auth(nursery: trio.Nursery, redis_server: RedisServer) -> None:
    base = await serve_debug(nursery, redis_server.url)
    async with httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/msp/extensions/com.acme.ext/debug")).status_code == 401
        client.cookies.set(SESSION_COOKIE, "session-a")
        resp = await client.get("/msp/extensions/com.acme.ext/debug")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/html")
        csp = resp.headers["content-security-policy"]
        assert "script-src 'self';" in csp
        assert "frame-ancestors 'none'" in csp
        assert resp.headers["x-content-type-options"] == "nosniff"
        page = resp.text
        assert 'data-extension-id="com.acme.ext"' in page
        assert 'data-stream-path="/api/ext-debug/stream"' in page
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
        assert scripts
        assert all('src="' in attrs and not body.strip() for attrs, body in scripts)  # no inline script
        assert "{{" not in page
        for ref in re.findall(r'(?:src|href)="(/ext-debug/assets/[^"]+)"', page):
            asset = await client.get(ref)
            assert asset.status_code == 200
            assert asset.headers["content-type"].split(";")[0] in ("text/javascript", "text/css")
        assert (await client.get("/ext-debug/assets/../_blueprint.py")).status_code == 404
        assert (await client.get("/ext-debug/assets/console.html")).status_code == 404
        bad = await client.get("/msp/extensions/a:b/debug")
        assert bad.status_code == 400


async def test_an_sse_client_leaving_frees_its_slot(nursery: trio.Nursery, redis_server: RedisServer) -> None:
    base = await serve_debug(nursery, redis_server.url, max_tails=1)
    ext = "com.acme.ssecap"
    await add(redis_server.url, key(TENANT_A, ext), message="hi")
    url = f"/api/ext-debug/stream?extensionId={ext}"
    async with sse(base, url, {"authorization": "Bearer tok-a"}) as reader:
        assert json.loads((await reader.frames(1))[0]["data"])["message"] == "hi"
        assert await refusal(base, f"extensionId={ext}") == (4503, "too_many_tails")
    with trio.fail_after(5):
        while True:  # the server notices the disconnect, closes the body generator, and releases the slot
            async with connect(base, f"extensionId={ext}") as ws:
                try:
                    assert [e["message"] for e in await receive(ws, 1)] == ["hi"]
                    break
                except ConnectionClosed:
                    await trio.sleep(0.05)
