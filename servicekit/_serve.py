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

import errno
import json
import logging
import math
import os
import select
import signal
import socket
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from functools import partial
from typing import Any, Final, cast, final

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.statsd import StatsdLogger
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper, ASGIFramework, ConnectionState, LifespanState
from hypercorn.utils import ShutdownError, raise_shutdown, repr_socket_addr, wrap_app

from ._accesslog import AccessLogger
from ._balance import ACCEPT_FALLBACK_S, ACCEPT_POLL_S, ConnectionBalance
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
    balance: ConnectionBalance | None = None,
    announce: bool = True,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until ``shutdown`` is set or one of ``signals`` arrives, then drain and return.

    Args:
        app: the ASGI app (a Quart-trio app); its ``before_serving``/``while_serving`` hooks run before the
            addresses are reported, its ``after_serving`` hooks after the drain. It must speak the ASGI
            lifespan protocol (Quart does): the sockets listen once its start-up completed.
        bind: ``host:port`` (or several); port 0 picks a free port; ``fd://N`` serves the socket of file
            descriptor N, bound by a parent process (and listened on by the first of its children to start).
        drain_timeout: seconds requests in flight may take to finish once shutdown starts.
        name: what the log lines and the draining answers call the service ("runner listening on ...").
        logger: where those lines go (default: the logger called ``name``).
        shutdown: set it to stop; a fresh event when omitted.
        accesslog: Hypercorn's access log target (``"-"`` for stderr), ``None`` for none.
        signals: the signals that start the drain; empty to watch none (e.g. outside the main thread).
        balance: several processes serve one listening socket (``fd://N``) and each takes a connection only
            when it holds the fewest (``_balance.py``; the runner's worker processes).
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
                serving = partial(_worker_serve, asgi, config, sockets=sockets, shutdown_trigger=drain,
                                  balance=balance)
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


async def _worker_serve(
    app: AppWrapper,
    config: HypercornConfig,
    *,
    sockets: Sockets,
    shutdown_trigger: Callable[[], Awaitable[None]],
    balance: ConnectionBalance | None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Hypercorn's trio ``worker_serve`` (``hypercorn/trio/run.py``: lifespan, then connections until the
    shutdown trigger returns, then ``graceful_timeout`` for what still runs), for plain HTTP sockets, with the
    accept step our own (:func:`_accept_loop`)."""
    config.set_statsd_logger_class(StatsdLogger)
    lifespan_state: LifespanState = {}
    lifespan = Lifespan(app, config, lifespan_state)
    context = WorkerContext(None)
    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as server_nursery:
            handler = partial(TCPServer, app, config, context, ConnectionState(lifespan_state.copy()))
            binds = [f"http://{repr_socket_addr(sock.family, sock.getsockname())}" for sock in sockets.insecure_sockets]
            for bind in binds:
                await config.log.info(f"Running on {bind} (CTRL + C to quit)")  # Hypercorn's own line
            task_status.started(binds)
            try:
                async with trio.open_nursery(strict_exception_groups=True) as nursery:
                    nursery.start_soon(raise_shutdown, shutdown_trigger)
                    for sock in sockets.insecure_sockets:
                        nursery.start_soon(_accept_loop, sock, handler, server_nursery, balance)
            except BaseExceptionGroup as error:
                _, other_errors = error.split((ShutdownError, KeyboardInterrupt))
                if other_errors is not None:
                    raise other_errors from None
            finally:
                await context.terminated.set()
                server_nursery.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()


_ACCEPT_RETRY_S: Final = 0.1
"""After ``accept`` failed for lack of file descriptors or memory, as ``trio.serve_listeners`` waits."""
_ACCEPT_CAPACITY_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})


async def _accept_loop(
    sock: socket.socket,
    handler: Callable[[trio.SocketStream], Awaitable[None]],
    handler_nursery: trio.Nursery,
    balance: ConnectionBalance | None,
) -> None:
    """Accept connections on ``sock`` and serve each in ``handler_nursery`` (``trio.serve_listeners`` for one
    listener); with ``balance``, take one only as the least loaded of the processes sharing ``sock``."""
    log = logging.getLogger("servicekit.serve")
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    if balance is not None:
        balance.join()
    try:
        async with listener:
            while True:
                if balance is not None:
                    await trio.lowlevel.wait_readable(sock)
                    if not await _our_turn(sock, balance):
                        continue  # another process took it
                try:
                    # Balanced, a connection is pending: taken at once, unless another process took it in the
                    # meantime (then look at the table again rather than take the next one unasked).
                    with trio.move_on_after(ACCEPT_POLL_S if balance is not None else math.inf):
                        stream = await listener.accept()
                        if balance is not None:
                            balance.opened()  # before the next look at the table
                        handler_nursery.start_soon(_connection, handler, stream, balance)
                except OSError as exc:
                    if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                        raise
                    log.error("accept failed: %s; retrying in %s s", os.strerror(exc.errno or 0), _ACCEPT_RETRY_S)
                    await trio.sleep(_ACCEPT_RETRY_S)
    finally:
        if balance is not None:
            balance.leave()


async def _our_turn(sock: socket.socket, balance: ConnectionBalance) -> bool:
    """Wait until this process is the least loaded, or the pending connection has waited long enough (True),
    or another process has taken it (False)."""
    give_up = trio.current_time() + ACCEPT_FALLBACK_S
    while not balance.may_accept() and trio.current_time() < give_up:
        await trio.sleep(ACCEPT_POLL_S)
        if not _pending(sock):
            return False
    return True


def _pending(sock: socket.socket) -> bool:
    """Whether a connection waits to be accepted on ``sock`` (``poll``: no ``select`` limit on the fd's number)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


async def _connection(
    handler: Callable[[trio.SocketStream], Awaitable[None]], stream: trio.SocketStream,
    balance: ConnectionBalance | None,
) -> None:
    try:
        await handler(stream)
    finally:
        if balance is not None:
            balance.closed()
        await trio.aclose_forcefully(stream)


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
