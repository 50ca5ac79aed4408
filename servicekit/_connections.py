"""HTTP/1.1 connection hygiene for Quart-trio apps on Hypercorn's trio worker.

**The fault** (Hypercorn 0.18.0, quart-trio 0.12.0; found while reproducing issue 13): a request answered
before its body was read (a 429, 401 or 404 from a before-request check), or a request carrying
``Connection: close``, left the connection open and deaf. The next request sent on it got no answer, ever;
a client's ``Connection: close`` was ignored (a socket stayed open 114 s). With a bare ASGI app Hypercorn
closes such connections correctly.

**The cause.** Hypercorn does its connection bookkeeping *inside the app's* ``send`` call: the last body
message makes the HTTP/1.1 protocol recycle or close the connection (``H11Protocol._maybe_recycle`` ->
``TCPServer.protocol_send(Closed())`` -> ``send_eof`` + ``aclose``), and on the way it delivers
``http.disconnect`` to the app. quart-trio runs each request as two tasks in one nursery and cancels the
nursery as soon as its message task sees that disconnect — while the other task is still inside that same
``send``. The cancellation lands in the close (or in the recycle that re-arms the reader and the idle
timer), so the socket is never closed and the protocol is left without a stream: later bytes on the
connection are read and dropped. A connection that was recycled this way also never becomes "idle", so a
graceful shutdown waits its whole drain timeout for it. Upstream has the same class of fault open
(pgjones/hypercorn#106, "skip socket shutdown when cancelled with trio").

**The fix** is the one Hypercorn already applies to its idle-timeout close: shield the connection's
bookkeeping from the app's cancellation. :func:`install` wraps two methods, once per process:
``H11Protocol.stream_send`` for ``StreamClosed`` (recycle or close after a response) and
``TCPServer.protocol_send`` for ``Closed`` (the close itself). Both do only socket and protocol state
work, bounded by the socket's own send path, so shielding cannot hold a cancelled task for long.
Raw-socket tests (``tests/servicekit/test_connections.py``, and per service) fail without it.

**One write per small answer.** Hypercorn writes a response's head and its body with a socket send each; the
peer wakes up twice and, with threads in the process (the runner's guests), each send hands the GIL over and
waits to get it back. :func:`install` also makes the HTTP/1.1 protocol hold the head of a response that
declares a non-empty ``Content-Length`` until its first body chunk, and send both in one write (anything else
sent on the stream, or its end, sends the held head first).

Apps also say ``Connection: close`` themselves when they answer before the request's body has fully arrived
(:func:`harden_connections`, which also installs the fix): Hypercorn then closes the connection anyway, and a
client told so in the headers never sends a next request into it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Final

import h11
import trio
from hypercorn.events import Closed, RawData
from hypercorn.protocol.events import StreamClosed
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.trio.tcp_server import TCPServer
from quart import request

__all__ = ["declares_body", "harden_connections", "install"]

_MARK: Final = "_servicekit_shielded"


def _shield_when(
    method: Callable[[Any, Any], Awaitable[None]], event_type: type
) -> Callable[[Any, Any], Awaitable[None]]:
    @functools.wraps(method)
    async def shielded(self: Any, event: Any) -> None:
        if isinstance(event, event_type):
            with trio.CancelScope(shield=True):
                await method(self, event)
        else:
            await method(self, event)

    setattr(shielded, _MARK, True)
    return shielded


def _locked_close(close: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    # Hypercorn's close half-closes the socket (send_eof) without the send lock its writers take, so a
    # close from the reading task (the peer broke protocol after our "Connection: close") and the app's
    # last write collide: trio refuses the write with BusyResourceError and the close is lost with it.
    @functools.wraps(close)
    async def locked(self: Any) -> None:
        with trio.CancelScope(shield=True):
            async with self.send_lock:
                await close(self)

    setattr(locked, _MARK, True)
    return locked


_HELD: Final = "_servicekit_held_head"
_FLUSHING: Final = "_servicekit_flushing"


def _declares_body(event: h11.Response) -> bool:
    for name, value in event.headers:
        if name == b"content-length":
            return value not in (b"0", b"")
    return False


def _coalescing(send_event: Callable[[Any, Any], Awaitable[None]]) -> Callable[[Any, Any], Awaitable[None]]:
    # ``H11Protocol._send_h11_event``: a response head (status >= 200, a non-empty Content-Length) is held
    # and sent with whatever the protocol sends next on this stream (its first body chunk).
    @functools.wraps(send_event)
    async def coalesced(self: Any, event: Any) -> None:
        held: bytes | None = self.__dict__.pop(_HELD, None)
        if held is None and type(event) is h11.Response and _declares_body(event):
            try:
                self.__dict__[_HELD] = self.connection.send(event)
            except h11.LocalProtocolError:
                if self.connection.their_state != h11.ERROR:
                    raise
            return
        try:
            data = self.connection.send(event)
        except h11.LocalProtocolError:
            if held is not None:
                await self.send(RawData(data=held))
            if self.connection.their_state != h11.ERROR:
                raise
            return
        if held is not None:
            data = held + data if data else held
        if data:  # an end of message with a Content-Length is b"": nothing to write
            await self.send(RawData(data=data))

    setattr(coalesced, _MARK, True)
    return coalesced


async def _flush_held(protocol: Any) -> None:
    held: bytes | None = protocol.__dict__.pop(_HELD, None)
    if held is not None:
        await protocol.send(RawData(data=held))


def _flushing_on(
    method: Callable[[Any, Any], Awaitable[None]], event_type: type
) -> Callable[[Any, Any], Awaitable[None]]:
    # ``H11Protocol.stream_send``: the stream ends (``StreamClosed``) with a head still held (the app sent no
    # body): send it before the recycle or close, as Hypercorn would have.
    @functools.wraps(method)
    async def flushing(self: Any, event: Any) -> None:
        if isinstance(event, event_type):
            with trio.CancelScope(shield=True):  # as the recycle itself (see _shield_when)
                await _flush_held(self)
        await method(self, event)

    setattr(flushing, _FLUSHING, True)
    return flushing


def install() -> None:
    """Shield Hypercorn's connection recycle/close from the app's cancellation, and serialise the close with
    the connection's writers (idempotent)."""
    if not getattr(H11Protocol.stream_send, _MARK, False):
        H11Protocol.stream_send = _shield_when(H11Protocol.stream_send, StreamClosed)  # type: ignore[method-assign,assignment]
    if not getattr(TCPServer.protocol_send, _MARK, False):
        TCPServer.protocol_send = _shield_when(TCPServer.protocol_send, Closed)  # type: ignore[method-assign,assignment]
    if not getattr(TCPServer._close, _MARK, False):
        TCPServer._close = _locked_close(TCPServer._close)  # type: ignore[method-assign,assignment]
    if not getattr(H11Protocol._send_h11_event, _MARK, False):
        H11Protocol._send_h11_event = _coalescing(H11Protocol._send_h11_event)  # type: ignore[method-assign,assignment]
    if not getattr(H11Protocol.stream_send, _FLUSHING, False):
        H11Protocol.stream_send = _flushing_on(H11Protocol.stream_send, StreamClosed)  # type: ignore[method-assign,assignment]


def harden_connections(app: Any) -> None:
    """:func:`install` the fix, and register an ``after_request`` hook on the Quart ``app``: an answer sent
    before the request's body has fully arrived (an early refusal) says ``Connection: close``."""
    install()

    async def _close_after_early_answer(response: Any) -> Any:
        if _body_unread(request):
            response.headers["Connection"] = "close"
        return response

    app.after_request(_close_after_early_answer)


def declares_body(headers: Any) -> bool:
    """Whether a request with these ``headers`` (anything with ``get``, case-insensitive) has a body to send: a
    ``Transfer-Encoding`` or a non-zero ``Content-Length``. An answer given before such a body has all arrived
    says ``Connection: close``."""
    length = headers.get("Content-Length", "").strip()
    return bool(headers.get("Transfer-Encoding")) or length not in {"", "0"}


def _body_unread(req: Any) -> bool:
    if not declares_body(req.headers):
        return False
    # Quart's request body sets ``_complete`` once the last byte arrived, and ``_must_raise`` when it was
    # refused (over MAX_CONTENT_LENGTH). Neither is public: if a Quart release renames them, every answer
    # to a request with a body closes its connection, which is safe, and the raw-socket tests still pass.
    body = req.body
    complete = getattr(body, "_complete", None)
    if complete is None or getattr(body, "_must_raise", None) is not None:
        return True
    return not complete.is_set()
