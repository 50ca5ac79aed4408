"""The runner hop's HTTP/1.1 client: h11 on kept-alive trio streams, and nothing else.

httpx (with httpcore and anyio under it) was the largest part of the gateway's per-call CPU: request and
response models, URL handling, the pool's anyio locks. The hop needs much less: one method, a few headers, a
JSON body written at once, a capped body read back, connections kept alive per runner. What is kept:

* connections are reused while idle less than ``idle_s`` (shorter than the runner's keep-alive, so the gateway
  never reuses one the runner is closing) and only when their socket has nothing to read (a closed or
  misbehaving peer makes it readable); at most ``max_idle`` idle ones per runner;
* ``connect_timeout_s`` bounds connecting; the caller's cancel scope bounds the rest, and a connection
  interrupted mid-exchange is closed, never reused;
* the response body is read up to ``max_response_bytes`` (:class:`ResponseTooLarge` past it);
* a runner that answers before reading the whole request (a draining runner's 503) and closes: the answer is
  still read and returned.

Failures are two kinds, which decide whether a call may be retried: :class:`ConnectFailed` (nothing was
sent) and :class:`TransportFailed` (the request may have reached the runner).
"""

from __future__ import annotations

import select
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, final

import h11
import trio

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_IDLE",
    "ConnectFailed",
    "HopResponse",
    "Origin",
    "Pool",
    "ResponseTooLarge",
    "TransportFailed",
]

DEFAULT_MAX_IDLE: Final = 32
"""Idle kept-alive connections kept per runner; more are closed when they finish."""
DEFAULT_MAX_CONNECTIONS: Final = 100
"""Connections open at once per runner (httpx's default too); further requests wait for one, within their
caller's deadline."""
_READ_BYTES: Final = 65536


class ConnectFailed(Exception):
    """No connection to the runner: nothing was sent."""


class TransportFailed(Exception):
    """The connection failed after the request was (maybe) sent."""


class ResponseTooLarge(Exception):
    """The runner's answer is larger than the cap."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a runner listens: ``host``, ``port`` and the ``Host`` header to send."""

    host: str
    port: int
    authority: str


@dataclass(frozen=True, slots=True)
class HopResponse:
    """A runner's answer: status, headers (lower-case names; repeated ones joined by ``, ``) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


@final
class _Connection:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    def reusable(self, now: float, idle_s: float) -> bool:
        if now - self.idle_since >= idle_s:
            return False
        try:
            poller = select.poll()
            poller.register(self.stream.socket.fileno(), select.POLLIN)
            # Readable while idle: the runner closed it (EOF) or sent something unasked for.
            return not poller.poll(0)
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        # Synchronous and safe under cancellation; the stream's aclose would only do this after a checkpoint.
        self.stream.socket.close()


@final
class Pool:
    """Kept-alive HTTP/1.1 connections to a few runners.

    Args:
        idle_s: an idle connection older than this is closed instead of reused.
        connect_timeout_s: bound of one connection attempt.
        max_idle: idle connections kept per runner.
        max_connections: connections open at once per runner.
    """

    def __init__(
        self,
        *,
        idle_s: float,
        connect_timeout_s: float,
        max_idle: int = DEFAULT_MAX_IDLE,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self._idle_s = idle_s
        self._connect_timeout_s = connect_timeout_s
        self._max_idle = max_idle
        self._max_connections = max_connections
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._busy: dict[Origin, trio.Semaphore] = {}
        self._closed = False

    async def request(
        self,
        origin: Origin,
        method: bytes,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        *,
        max_response_bytes: int,
    ) -> HopResponse:
        """Send one request with ``body`` and read the whole answer.

        Raises:
            ConnectFailed: no connection could be made (nothing was sent).
            TransportFailed: the connection broke or the answer was not HTTP/1.1.
            ResponseTooLarge: the answer's body exceeds ``max_response_bytes``.
        """
        busy = self._busy.get(origin)
        if busy is None:
            busy = self._busy[origin] = trio.Semaphore(self._max_connections)
        # A free connection slot is taken without the schedule point ``async with busy`` adds even then: the
        # exchange's socket calls are schedule points anyway, and each one more is a pass of the event loop.
        try:
            busy.acquire_nowait()
        except trio.WouldBlock:
            await busy.acquire()
        try:
            conn = self._take(origin) or await self._connect(origin)
            try:
                response = await self._exchange(conn, origin, method, target, headers, body, max_response_bytes)
            except BaseException:
                conn.close()
                raise
            self._give_back(origin, conn)
            return response
        finally:
            busy.release()

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()

    def _take(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to have been closed by the runner
            if conn.reusable(now, self._idle_s):
                return conn
            conn.close()
        return None

    def _give_back(self, origin: Origin, conn: _Connection) -> None:
        state = conn.h11
        if self._closed or state.our_state is not h11.DONE or state.their_state is not h11.DONE:
            conn.close()
            return
        state.start_next_cycle()
        idle = self._idle.setdefault(origin, deque())
        if len(idle) >= self._max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def _connect(self, origin: Origin) -> _Connection:
        try:
            with trio.fail_after(self._connect_timeout_s):
                stream = await trio.open_tcp_stream(origin.host, origin.port)
        except trio.TooSlowError:
            raise ConnectFailed(f"connect timeout after {self._connect_timeout_s:g} s") from None
        except OSError as exc:
            raise ConnectFailed(f"{type(exc).__name__}: {exc.strerror or exc}") from None
        return _Connection(stream)

    @staticmethod
    async def _exchange(
        conn: _Connection,
        origin: Origin,
        method: bytes,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        max_response_bytes: int,
    ) -> HopResponse:
        state = conn.h11
        try:
            out = state.send(
                h11.Request(
                    method=method,
                    target=target,
                    headers=[(b"host", origin.authority.encode()), (b"content-length", b"%d" % len(body)), *headers],
                )
            )
            out += state.send(h11.Data(data=body)) or b""
            out += state.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as exc:
            raise TransportFailed(f"bad request: {exc}") from None
        send_failed: str | None = None
        try:
            await conn.stream.send_all(out)
        except (trio.BrokenResourceError, OSError) as exc:
            # The runner may have answered and closed before reading everything (a draining runner does):
            # read what it said before giving up.
            send_failed = type(exc).__name__
        try:
            return await _read_response(conn, max_response_bytes)
        except TransportFailed as exc:
            if send_failed is not None:
                raise TransportFailed(f"send failed ({send_failed}), then {exc}") from None
            raise


async def _read_response(conn: _Connection, max_bytes: int) -> HopResponse:
    state = conn.h11
    status = 0
    headers: dict[str, str] = {}
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            event = state.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await conn.stream.receive_some(_READ_BYTES)
                except (trio.BrokenResourceError, OSError) as exc:
                    raise TransportFailed(f"receive failed: {type(exc).__name__}") from None
                state.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
                for name, value in event.headers:
                    key = name.decode("latin-1")
                    text = value.decode("latin-1")
                    headers[key] = f"{headers[key]}, {text}" if key in headers else text
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > max_bytes:
                    raise ResponseTooLarge(f"runner response exceeds {max_bytes} bytes")
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return HopResponse(status, headers, b"".join(chunks))
            elif isinstance(event, h11.ConnectionClosed):
                raise TransportFailed("the runner closed the connection without an answer")
            elif event is h11.PAUSED:  # a protocol switch: never asked for
                raise TransportFailed("the runner switched protocols")
            # h11.InformationalResponse (100 Continue ...): nothing to do.
    except h11.RemoteProtocolError as exc:
        raise TransportFailed(f"bad answer: {exc}") from None
