"""``serve_app``: an ASGI app on Hypercorn's trio worker, reporting its addresses and draining on shutdown.

The shape follows ``hypercorn/trio/run.py``: an outer nursery watches for signals, an inner one runs the
server; ``task_status.started(binds)`` reports the bound addresses (useful with port 0). Setting
``shutdown`` (or SIGTERM/SIGINT) stops accepting connections and gives requests in flight up to
``drain_timeout`` seconds to finish before the app's shutdown hooks run. Cancelling the caller's scope stops
at once, as cancellation does everywhere in trio.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence
from typing import Any, Final

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from ._connections import install as install_connection_fix

__all__ = ["DEFAULT_SIGNALS", "serve_app"]

DEFAULT_SIGNALS: Final[tuple[signal.Signals, ...]] = (signal.SIGTERM, signal.SIGINT)


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
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until ``shutdown`` is set or one of ``signals`` arrives, then drain and return.

    Args:
        app: the ASGI app (a Quart-trio app); its ``before_serving``/``while_serving`` hooks run before the
            addresses are reported, its ``after_serving`` hooks after the drain.
        bind: ``host:port`` (or several); port 0 picks a free port.
        drain_timeout: seconds requests in flight may take to finish once shutdown starts.
        name: what the log lines call the service ("runner listening on ...").
        logger: where those lines go (default: the logger called ``name``).
        shutdown: set it to stop; a fresh event when omitted.
        accesslog: Hypercorn's access log target (``"-"`` for stderr), ``None`` for none.
        signals: the signals that start the drain; empty to watch none (e.g. outside the main thread).
        task_status: ``started`` with the bound addresses (``http://127.0.0.1:54321``).
    """
    log = logger or logging.getLogger(name)
    install_connection_fix()
    config = HypercornConfig()
    config.bind = [bind] if isinstance(bind, str) else list(bind)
    config.graceful_timeout = float(drain_timeout)
    config.accesslog = accesslog
    shutdown = shutdown if shutdown is not None else trio.Event()

    async def run_server(task_status: trio.TaskStatus[list[str]]) -> None:
        # Returns once requests in flight are done (or the drain timeout passed) after shutdown is set.
        await hypercorn_serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)

    async with trio.open_nursery() as nursery:
        if signals:
            nursery.start_soon(_watch_signals, shutdown, tuple(signals), log)
        async with trio.open_nursery() as server_nursery:
            binds: list[str] = await server_nursery.start(run_server)
            log.info("%s listening on %s", name, ", ".join(binds))
            task_status.started(binds)
        nursery.cancel_scope.cancel()  # the server has drained: stop watching for signals
    log.info("%s stopped", name)


async def _watch_signals(shutdown: trio.Event, signals: tuple[signal.Signals, ...], log: logging.Logger) -> None:
    with trio.open_signal_receiver(*signals) as received:
        async for signum in received:
            log.info("received %s: draining", signal.Signals(signum).name)
            shutdown.set()
            return
