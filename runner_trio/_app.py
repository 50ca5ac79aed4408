"""``create_app()`` and ``serve()``: the runner as a Quart-trio app on Hypercorn's trio worker (``serve_app``)."""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import AsyncGenerator
from typing import Final

import trio
from quart import Response
from quart_trio import QuartTrio
from werkzeug.exceptions import RequestEntityTooLarge

from servicekit import configure_tracing, harden_connections, json_errors, serve_app

from ._config import Settings
from ._routes import api
from ._runtime import Runtime
from ._ui_route import InstallValidator, create_ui_blueprint

__all__ = ["create_app", "serve"]

log = logging.getLogger("runner_trio")

# JSON + base64 inflate a body by 4/3; leave room for the rest of the envelope.
_ENVELOPE_OVERHEAD: Final = 1024 * 1024
_GATEWAY_BODY_CAP: Final = 10 * 1024 * 1024


def create_app(settings: Settings | None = None) -> QuartTrio:
    """Build the runner app. Its runtime (store, caches, engine) opens when serving starts."""
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

    @app.while_serving
    async def lifespan() -> AsyncGenerator[None, None]:
        runtime = await Runtime.open(settings)
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
    if settings.ui_strict_validation:
        validator = InstallValidator(settings.registry_base_url, settings.service_token)
    if "runner_ui" not in app.blueprints:
        app.register_blueprint(create_ui_blueprint(bundles=runtime.bundles, settings=settings, validator=validator))


async def serve(
    settings: Settings | None = None,
    *,
    shutdown: trio.Event | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the runner until ``shutdown`` is set (or SIGTERM/SIGINT), then drain in-flight requests.

    ``task_status.started`` reports the bound addresses (useful with port 0). In-flight requests get
    ``RUNNER_DRAIN_TIMEOUT_S`` to finish; new ones are answered 503 ``draining`` at once (never started, so
    the gateway sends them to another runner); an idle runner exits at once (see ``servicekit.serve_app``).
    """
    settings = settings or Settings.from_env()
    configure_tracing("ext-runner")  # OpenTelemetry, when OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/operations.md)
    app = create_app(settings)
    await serve_app(
        app,
        bind=settings.bind,
        drain_timeout=settings.drain_timeout_s,
        name="runner",
        logger=log,
        shutdown=shutdown,
        task_status=task_status,
    )
