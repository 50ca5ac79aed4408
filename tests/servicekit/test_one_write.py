"""``servicekit`` connection fix: a small answer's head and body go out in one write; a streamed answer's head
still goes out before its body."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import pytest
import trio
from quart import Response
from quart_trio import QuartTrio

from servicekit import serve_app


def _app(release: trio.Event) -> QuartTrio:
    app = QuartTrio("one_write_test")

    @app.get("/small")
    async def _small() -> Response:
        return Response('{"ok": true}', content_type="application/json")

    @app.get("/stream")
    async def _stream() -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            await release.wait()
            yield b"late"

        return Response(chunks(), content_type="text/plain")

    return app


async def _read_until(stream: trio.SocketStream, marker: bytes) -> bytes:
    received = b""
    while marker not in received:
        chunk = await stream.receive_some()
        assert chunk, f"connection closed before {marker!r}: {received!r}"
        received += chunk
    return received


async def test_a_small_answer_is_one_write_and_a_streamed_head_is_not_held(monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[bytes] = []
    send_all = trio.SocketStream.send_all

    async def counting(self: trio.SocketStream, data: bytes | bytearray | memoryview) -> None:
        if data:  # an empty write is no syscall (trio checkpoints)
            writes.append(bytes(data))
        await send_all(self, data)

    monkeypatch.setattr(trio.SocketStream, "send_all", counting)
    release = trio.Event()
    shutdown = trio.Event()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve_app, _app(release), bind="127.0.0.1:0", drain_timeout=1,
                                                name="test", shutdown=shutdown, signals=()))
            host, port = binds[0].removeprefix("http://").rsplit(":", 1)
            client = await trio.open_tcp_stream(host, int(port))
            async with client:
                for _ in range(3):  # keep-alive: every answer on the connection, one write each
                    await client.send_all(b"GET /small HTTP/1.1\r\nhost: test\r\n\r\n")
                    writes.clear()  # the request's own write; the server's come after it
                    answer = await _read_until(client, b'{"ok": true}')
                    assert answer.startswith(b"HTTP/1.1 200")
                    assert len(writes) == 1, writes
                    assert writes[0].startswith(b"HTTP/1.1 200")
                    assert writes[0].endswith(b'{"ok": true}')
                # No Content-Length: the head is sent at once, before the body exists.
                await client.send_all(b"GET /stream HTTP/1.1\r\nhost: test\r\n\r\n")
                head = await _read_until(client, b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200")
                assert b"late" not in head
                release.set()
                await _read_until(client, b"late")
            shutdown.set()
