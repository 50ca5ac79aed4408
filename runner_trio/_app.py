"""``create_app()`` and ``serve()``: the runner as a Quart-trio app on Hypercorn's trio worker (``serve_app``)."""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Final, cast

import trio
from quart import Response
from quart_trio import QuartTrio
from werkzeug.exceptions import RequestEntityTooLarge

from servicekit import ConnectionBalance, configure_tracing, harden_connections, json_errors, serve_app

from ._config import Settings
from ._routes import api
from ._runtime import Runtime
from ._ui_route import InstallValidator, create_ui_blueprint

if TYPE_CHECKING:
    from ._workers import WorkerRole

__all__ = ["create_app", "serve"]

log = logging.getLogger("runner_trio")

# JSON + base64 inflate a body by 4/3; leave room for the rest of the envelope.
_ENVELOPE_OVERHEAD: Final = 1024 * 1024
_GATEWAY_BODY_CAP: Final = 10 * 1024 * 1024


def create_app(settings: Settings | None = None, *, worker: WorkerRole | None = None) -> QuartTrio:
    """Build the runner app. Its runtime (store, caches, engine) opens when serving starts.

    ``worker``: set in a worker process of a multi-process runner (``_workers.py``): the caps and metrics are
    then shared with the other workers.
    """
    settings = settings or Settings.from_env()
    app = QuartTrio("runner_trio")
    harden_connections(app)  # see servicekit/_connections.py: no request lost on a reused connection
    json_errors(app, log)  # no route answers HTML: 404/405 and unexpected exceptions become JSON
    # Read bodies up to the gateway's own cap so that an oversized guest body still gets the contract's
    # structured 413 (status in the JSON) rather than a bare HTTP error.
    readable = max(settings.max_request_body_bytes, _GATEWAY_BODY_CAP)
    app.config["MAX_CONTENT_LENGTH"] = readable * 4 // 3 + _ENVELOPE_OVERHEAD
    app.config["BODY_TIMEOUT"] = 60
    app.config["RESPONSE_TIMEOUT"] = None  # the guest deadline bounds responses; Hypercorn bounds the socket
    app.extensions["runner_settings"] = settings
    app.register_blueprint(api)

    @app.errorhandler(RequestEntityTooLarge)
    async def _too_large(_exc: RequestEntityTooLarge) -> Response:
        return Response(
            json.dumps({"error": "payload_too_large", "message": "request body exceeds the runner's limit"}),
            status=413,
            content_type="application/json",
        )

    @app.before_request
    async def _count_request() -> None:
        # Per worker process: how evenly the kernel spreads connections between a runner's workers.
        app.extensions["runner_runtime"].metrics.worker_requests.inc()

    @app.while_serving
    async def lifespan() -> AsyncGenerator[None, None]:
        runtime = await Runtime.open(settings, worker=worker)
        app.extensions["runner_runtime"] = runtime
        # Everything allocated so far lives as long as the process: keep it out of the collector's full
        # passes, which otherwise show up as ~40 ms pauses in p99 latency.
        gc.collect()
        gc.freeze()
        try:
            await app.nursery.start(runtime.run)
            _register_ui(app, runtime)
            yield
        finally:
            await runtime.aclose()

    return app


def _register_ui(app: QuartTrio, runtime: Runtime) -> None:
    settings = runtime.settings
    validator = None
    # Only isolated origins ask the gateway (which hash an install serves); /ext-ui/{ext}/{hash}/ trusts the
    # gateway's signature on the URL instead.
    if settings.ui_strict_validation and settings.ui_origin_template is not None:
        validator = InstallValidator(settings.registry_base_url, settings.service_token)
    if "runner_ui" not in app.blueprints:
        app.register_blueprint(create_ui_blueprint(bundles=runtime.bundles, settings=settings, validator=validator))


async def serve(
    settings: Settings | None = None,
    *,
    shutdown: trio.Event | None = None,
    worker: WorkerRole | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the runner until ``shutdown`` is set (or SIGTERM/SIGINT), then drain in-flight requests.

    ``task_status.started`` reports the bound addresses (useful with port 0). In-flight requests get
    ``RUNNER_DRAIN_TIMEOUT_S`` to finish; new ones are answered 503 ``draining`` at once (never started, so
    the gateway sends them to another runner); an idle runner exits at once (see ``servicekit.serve_app``).
    This is one process; ``python -m runner_trio`` runs ``RUNNER_WORKERS`` of them (``_workers.py``), each
    calling this with its ``worker`` role: it then serves the supervisor's socket beside the other workers,
    taking new connections as the least loaded of them, and leaves the ``listening on`` line to the supervisor.
    """
    settings = settings or Settings.from_env()
    configure_tracing("ext-runner")  # OpenTelemetry, when OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/operations.md)
    app = create_app(settings, worker=worker)
    if worker is not None:
        task_status = cast("trio.TaskStatus[list[str]]", _ReadyWhenStarted(app, task_status))
    balance = ConnectionBalance(worker.connections, worker.index - 1) if worker is not None else None
    try:
        await serve_app(
            app,
            bind=f"fd://{worker.listen_fd}" if worker is not None else settings.bind,
            drain_timeout=settings.drain_timeout_s,
            name="runner",
            logger=log,
            shutdown=shutdown,
            balance=balance,
            announce=worker is None,
            task_status=task_status,
        )
    finally:
        if balance is not None:
            balance.close()


class _ReadyWhenStarted:
    """A worker reports itself ready only when its app really started: Hypercorn goes on to listen after a
    failed start-up (a bad trust bundle, say), and the supervisor must see that worker fail, not serve."""

    def __init__(self, app: QuartTrio, task_status: trio.TaskStatus[list[str]]) -> None:
        self._app = app
        self._task_status = task_status

    def started(self, value: list[str] | None = None) -> None:
        if value is None:
            raise TypeError("serve_app reports its addresses")
        if "runner_runtime" in self._app.extensions:
            self._task_status.started(value)
        else:
            log.error("runner worker: the app did not start: not ready")
