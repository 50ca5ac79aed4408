"""A raw HTTP/1.1 connection for tests that must see what a server does on the wire: whether it answers a
request sent on a reused connection, and whether it closes the connection when it says it will.

h11 parses the answers (a client library would hide exactly what these tests look at: it reconnects).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Final

import h11
import trio

#: How long a test waits for an answer or for the server to close: far beyond a loaded machine's latency,
#: far below the 90 s a client waited when a request was lost.
WIRE_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class WireResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class NoAnswer(AssertionError):
    """The server neither answered nor closed the connection within :data:`WIRE_TIMEOUT_S`."""


class RawConnection:
    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buffer = b""

    @classmethod
    async def open(cls, url: str) -> RawConnection:
        parts = urllib.parse.urlsplit(url)
        stream = await trio.open_tcp_stream(parts.hostname or "127.0.0.1", parts.port or 80)
        return cls(stream)

    async def send(self, data: bytes) -> bool:
        """Send raw bytes; False when the server already closed the connection."""
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def send_head(self, method: str, target: str, headers: dict[str, str]) -> bool:
        lines = [f"{method} {target} HTTP/1.1", "Host: test"] + [f"{k}: {v}" for k, v in headers.items()]
        return await self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def read_response(self) -> WireResponse | None:
        """The next response, or None when the server closed the connection (EOF or reset) before one.

        Raises:
            NoAnswer: nothing at all within WIRE_TIMEOUT_S: the request was lost.
        """
        parser = h11.Connection(h11.CLIENT)
        # h11 needs to have "sent" a request to parse a response: feed it a placeholder one.
        parser.send(h11.Request(method="GET", target="/", headers=[("host", "test")]))
        parser.send(h11.EndOfMessage())
        status, headers, body = 0, {}, b""
        with trio.move_on_after(WIRE_TIMEOUT_S) as scope:
            while True:
                event = parser.next_event()
                if event is h11.NEED_DATA:
                    data = self._buffer or await self._receive()
                    self._buffer = b""
                    if data is None:
                        return None
                    parser.receive_data(data)
                    if not data:
                        return None if status == 0 else WireResponse(status, headers, body)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    headers = {k.decode().lower(): v.decode() for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    body += bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    self._buffer = bytes(parser.trailing_data[0])
                    return WireResponse(status, headers, body)
                elif isinstance(event, h11.ConnectionClosed):
                    return None
        assert scope.cancelled_caught
        raise NoAnswer(f"no answer and no close within {WIRE_TIMEOUT_S} s")

    async def closed_by_server(self) -> bool:
        """True when the server closes the connection (EOF or reset) within WIRE_TIMEOUT_S without sending
        anything more; False when it keeps it open that long."""
        with trio.move_on_after(WIRE_TIMEOUT_S):
            while True:
                data = await self._receive()
                if not data:
                    return True
        return False

    async def _receive(self) -> bytes | None:
        try:
            return bytes(await self._stream.receive_some(65536))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None

    async def aclose(self) -> None:
        await self._stream.aclose()


async def assert_early_answer_closes(
    url: str, target: str, headers: dict[str, str], status: int, body: bytes, *, length: int | None = None
) -> WireResponse:
    """POST ``target`` announcing ``body`` (or ``length`` bytes) but sending only the head; the answer comes
    before the body, says ``Connection: close`` and is JSON. The client then sends the body and a next
    request on the same connection: the server must close it (never leave it open and silent).
    """
    conn = await RawConnection.open(url)
    try:
        announced = len(body) if length is None else length
        head = {"Content-Type": "application/json", "Content-Length": str(announced), **headers}
        assert await conn.send_head("POST", target, head)
        response = await conn.read_response()
        assert response is not None
        assert response.status == status
        assert response.headers.get("connection") == "close"
        assert response.headers["content-type"].startswith("application/json")
        if await conn.send(body):
            await conn.send_head("GET", "/healthz", {})
        assert await conn.closed_by_server()
        return response
    finally:
        await conn.aclose()
