"""``serve_app``: an ASGI app on Hypercorn's trio worker, reporting its addresses and draining on shutdown.

The shape follows ``hypercorn/trio/run.py``: an outer nursery watches for signals, an inner one runs the
server; ``task_status.started(binds)`` reports the bound addresses (useful with port 0). Cancelling the
caller's scope stops at once, as cancellation does everywhere in trio.

**The drain.** Setting ``shutdown`` (or SIGTERM/SIGINT) starts it, in this order:

1. Readiness flips: from that instant every new request, on an open connection or a new one, answers at once
   ``503 {"error": "draining", ...}`` with ``Retry-After`` and ``Connection: close``, without reaching the
   app: ``/readyz`` says 503, and a caller knows the request was not started and may send it elsewhere.
2. Requests already in the app finish, for up to ``drain_timeout`` seconds; their responses say
   ``Connection: close``.
3. As soon as none is left, and at least :data:`DRAIN_LINGER_S` after the start (so ~0.5 s for an idle
   service), Hypercorn stops accepting, closes idle keep-alive connections and cuts what still runs if the
   drain timeout has passed; the listening sockets close (a late connection is refused rather than left in
   the backlog), then the app's shutdown hooks run.

The sockets listen only while the app is started (from ``lifespan.startup.complete`` to
``lifespan.shutdown``): a connection during start-up is refused, so a caller fails over at once instead of
waiting for the start-up to finish.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from functools import partial
from typing import Any, Final, cast, final

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.typing import ASGIFramework
from hypercorn.utils import wrap_app

from ._accesslog import AccessLogger
from ._connections import install as install_connection_fix

__all__ = ["DEFAULT_SIGNALS", "DRAINING", "DRAIN_LINGER_S", "DRAIN_RETRY_AFTER_S", "serve_app"]

DEFAULT_SIGNALS: Final[tuple[signal.Signals, ...]] = (signal.SIGTERM, signal.SIGINT)
DRAINING: Final = "draining"
"""The ``error`` of the 503 a draining service answers: the request was not started, send it elsewhere."""
DRAIN_RETRY_AFTER_S: Final = 1
DRAIN_LINGER_S: Final = 0.5
KEEP_ALIVE_TIMEOUT_S: Final = 75.0
"""How long a service keeps an idle HTTP/1.1 connection (Hypercorn's default is 5 s). A client must let its own
idle connections go sooner than this (the gateway's runner client keeps them 30 s), or it can send a
request on a connection at the instant the server closes it: the request is then lost with a
RemoteProtocolError (found by the load test at concurrency 32–64 with both sides at 5 s)."""
"""The shortest drain (within the drain timeout). Closing an idle keep-alive connection races with a request
the peer sends on it at that moment, which is then lost to the peer without an answer. A caller that sent a
request just before the signal (the gateway picked this runner a moment before it saw a 503 and cooled it
down) gets the 503 instead, and a caller that got one sends nothing more here."""
_WS_SERVICE_RESTART: Final = 1012  # RFC 6455 close code "service restart"

_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]


async def serve_app(
    app: Any,
    *,
    bind: str | Sequence[str],
    drain_timeout: float,
    name: str,
    logger: logging.Logger | None = None,
    shutdown: trio.Event | None = None,
    accesslog: str | None = None,
    signals: Sequence[signal.Signals] = DEFAULT_SIGNALS,
    reuse_port: bool = False,
    announce: bool = True,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until ``shutdown`` is set or one of ``signals`` arrives, then drain and return.

    Args:
        app: the ASGI app (a Quart-trio app); its ``before_serving``/``while_serving`` hooks run before the
            addresses are reported, its ``after_serving`` hooks after the drain. It must speak the ASGI
            lifespan protocol (Quart does): the sockets listen once its start-up completed.
        bind: ``host:port`` (or several); port 0 picks a free port.
        drain_timeout: seconds requests in flight may take to finish once shutdown starts.
        name: what the log lines and the draining answers call the service ("runner listening on ...").
        logger: where those lines go (default: the logger called ``name``).
        shutdown: set it to stop; a fresh event when omitted.
        accesslog: Hypercorn's access log target (``"-"`` for stderr), ``None`` for none.
        signals: the signals that start the drain; empty to watch none (e.g. outside the main thread).
        reuse_port: bind with ``SO_REUSEPORT``, so that several processes each listen on their own socket of
            one port and the kernel spreads new connections between them (the runner's worker processes).
        announce: log ``<name> listening on <addresses>`` once serving (a worker process leaves that line to
            its supervisor, which logs it once every worker is ready).
        task_status: ``started`` with the bound addresses (``http://127.0.0.1:54321``).
    """
    log = logger or logging.getLogger(name)
    install_connection_fix()
    config = HypercornConfig()
    config.bind = [bind] if isinstance(bind, str) else list(bind)
    config.accesslog = accesslog
    config.logger_class = AccessLogger  # Hypercorn's lines, each atom computed only when the format reads it
    config.keep_alive_timeout = KEEP_ALIVE_TIMEOUT_S
    if reuse_port:
        # Hypercorn sets SO_REUSEPORT on the sockets it creates when ``workers > 1``; ``worker_serve`` itself
        # never reads the field (it serves one process), so this changes nothing else.
        config.workers = 2
    shutdown = shutdown if shutdown is not None else trio.Event()
    sockets = config.create_sockets()
    gate = _DrainGate(app, name=name, listen=partial(_listen, sockets, config.backlog),
                      stop_listening=partial(_close, sockets))

    async def drain() -> None:
        # Hypercorn's shutdown trigger: when this returns, Hypercorn stops accepting, closes idle connections
        # and gives what still runs ``graceful_timeout`` more seconds.
        await shutdown.wait()
        started = trio.current_time()
        deadline = started + drain_timeout
        gate.start_draining()
        with trio.move_on_at(deadline):
            await gate.wait_idle()
            await trio.sleep_until(min(deadline, started + DRAIN_LINGER_S))
        if gate.in_flight:
            log.warning("%s: the drain timeout (%g s) passed with %d request(s) in flight: cutting them",
                        name, drain_timeout, gate.in_flight)
        config.graceful_timeout = max(0.0, deadline - trio.current_time())

    try:
        async with trio.open_nursery() as nursery:
            if signals:
                nursery.start_soon(_watch_signals, shutdown, tuple(signals), log)
            async with trio.open_nursery() as server_nursery:
                asgi = wrap_app(cast(ASGIFramework, gate), config.wsgi_max_body_size, "asgi")
                serving = partial(worker_serve, asgi, config, sockets=sockets, shutdown_trigger=drain)
                binds: list[str] = await server_nursery.start(serving)
                if announce:
                    log.info("%s listening on %s", name, ", ".join(binds))
                task_status.started(binds)
            nursery.cancel_scope.cancel()  # the server has drained: stop watching for signals
    finally:
        _close(sockets)
    log.info("%s stopped", name)


async def _watch_signals(shutdown: trio.Event, signals: tuple[signal.Signals, ...], log: logging.Logger) -> None:
    with trio.open_signal_receiver(*signals) as received:
        async for signum in received:
            log.info("received %s: draining", signal.Signals(signum).name)
            shutdown.set()
            return


def _listen(sockets: Sockets, backlog: int) -> None:
    for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
        if sock.fileno() != -1 and not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            sock.listen(backlog)


def _close(sockets: Sockets) -> None:
    for sock in (*sockets.secure_sockets, *sockets.insecure_sockets, *sockets.quic_sockets):
        sock.close()  # idempotent


@final
class _DrainGate:
    """ASGI middleware between Hypercorn and the app: counts the requests in the app, refuses new ones once
    draining, marks responses sent while draining ``Connection: close``, and opens/closes the listening
    sockets with the app's lifespan."""

    def __init__(self, app: Any, *, name: str, listen: Callable[[], None], stop_listening: Callable[[], None]) -> None:
        self._app = app
        self._listen = listen
        self._stop_listening = stop_listening
        self._draining = False
        self._in_flight = 0
        self._idle = trio.Event()
        self._idle.set()
        self._refusal = json.dumps({
            "error": DRAINING,
            "message": f"the {name} is shutting down; the request was not started: send it again",
        }).encode()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def start_draining(self) -> None:
        self._draining = True

    async def wait_idle(self) -> None:
        while self._in_flight:
            await self._idle.wait()

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
        elif kind not in {"http", "websocket"}:
            await self._app(scope, receive, send)
        elif self._draining:
            await self._refuse(kind, receive, send)
        else:
            if not self._in_flight:
                self._idle = trio.Event()
            self._in_flight += 1
            try:
                await self._app(scope, receive, self._closing_when_draining(send) if kind == "http" else send)
            finally:
                self._in_flight -= 1
                if not self._in_flight:
                    self._idle.set()

    def _closing_when_draining(self, send: _Send) -> _Send:
        async def closing_send(message: _Message) -> None:
            if message["type"] == "http.response.start" and self._draining:
                headers = [(k, v) for k, v in message.get("headers", ()) if bytes(k).lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        return closing_send

    async def _refuse(self, kind: str, receive: _Receive, send: _Send) -> None:
        if kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": _WS_SERVICE_RESTART})
            return
        # The body is never read: Connection: close makes Hypercorn close the connection after this answer.
        await send({
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(self._refusal)).encode()),
                (b"retry-after", str(DRAIN_RETRY_AFTER_S).encode()),
                (b"connection", b"close"),
            ],
        })
        await send({"type": "http.response.body", "body": self._refusal})

    async def _lifespan(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        async def lifespan_receive() -> _Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                # Hypercorn has stopped accepting and the connections are done: refuse what comes next.
                self._stop_listening()
            return message

        async def lifespan_send(message: _Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                self._listen()
            await send(message)

        try:
            await self._app(scope, lifespan_receive, lifespan_send)
        finally:
            self._listen()  # an app without lifespan support returns at once: serve it all the same
