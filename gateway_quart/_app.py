"""``create_app(settings)`` and ``serve(settings)``: the gateway as a Quart-trio app on Hypercorn's trio worker."""

from __future__ import annotations

import logging
import secrets
from typing import Final

import httpx
import trio
from quart import Response, g
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from bundles.store import BundleStore, open_store
from servicekit import configure_tracing, harden_connections, json_errors, serve_app

from . import _admin, _canary_api, _host_page, _installs, _journal_admin, _proxy, _public, _usage_api
from ._audit import AuditWriter
from ._auth import Principal, SessionSigner, authenticate, principal_for_token
from ._budgets import BudgetGuard
from ._canary import CanaryController
from ._canary_fleet import FleetCanaryStats
from ._errors import ApiError, PayloadTooLarge, RegistryError
from ._fleet import FleetState
from ._headers import SECURITY_HEADERS
from ._journal_index import JournalIndexer, run_journal_tasks
from ._ratelimit import FleetRateLimiter, RateLimiter, TokenBucketLimiter
from ._runner_client import RunnerClient
from ._runner_pool import Affinity, Discovery, RunnerPool
from ._settings import Settings
from ._state import STATE_KEY, GatewayState, ManifestCache
from ._usage import UsageRecorder
from ._views import json_response
from .debug import DEFAULT_REAUTHORIZE_S, DebugCredentials, create_debug_blueprint
from .registry import CachedRegistry, Registry, open_registry

__all__ = ["create_app", "serve"]

log = logging.getLogger("gateway_quart")

AUDIT_FLUSH_TIMEOUT_S: Final = 5.0
_HTTP_CODES: Final = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 408: "request_timeout"}


def create_app(
    settings: Settings,
    *,
    registry: Registry | None = None,
    store: BundleStore | None = None,
    runner_transport: httpx.AsyncBaseTransport | None = None,
) -> QuartTrio:
    """Build the gateway app.

    The registry is opened (and migrated) and the runner client created when the app starts serving, and
    both are closed when it stops.

    Args:
        settings: the configuration (see :meth:`Settings.from_env`).
        registry: a registry to use instead of opening ``settings.registry_database``.
        store: a bundle store to use instead of opening ``settings.bundle_store_base``.
        runner_transport: an httpx transport for the runner hop (tests).

    Raises:
        bundles.StoreError: ``BUNDLE_STORE_BASE`` (or an ``STORAGE_S3_*`` setting) is invalid.
    """
    # httpx logs an INFO line for every request it sends: one per proxied call, repeating the access log.
    # Its warnings still show; a deployment that configured the "httpx" logger itself keeps its choice.
    httpx_log = logging.getLogger("httpx")
    if httpx_log.level == logging.NOTSET:
        httpx_log.setLevel(logging.WARNING)
    app = QuartTrio(__name__, static_folder=None)
    harden_connections(app)  # see servicekit/_connections.py: no request lost on a reused connection
    json_errors(app, log, id_field="requestId")  # the catch-all 500 (HTTP errors keep the handlers below)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    # Deadlines are ours (the runner hop has its own); Quart's 60 s default would cut long extension calls.
    app.config["RESPONSE_TIMEOUT"] = None
    if store is None and settings.bundle_store_base is not None:
        store = open_store(settings.bundle_store_base)
    signer = SessionSigner(settings.session_secret or secrets.token_urlsafe(32), ttl_s=settings.session_ttl_s)
    pool_scope = trio.CancelScope()  # the runner pool's health checks and discovery, while serving
    usage_scope = trio.CancelScope()  # the usage and budget writers, while serving
    journal_scope = trio.CancelScope()  # the journal index writer and retention sweeper, while serving
    journal_store = open_store(settings.journal_store) if settings.journal_store is not None else store
    canary_scope = trio.CancelScope()  # the canary evaluator, while serving

    @app.before_serving
    async def _open() -> None:
        reg = registry if registry is not None else await open_registry(settings.registry_database)
        # With GATEWAY_REDIS_URL, rate limits and revocations are the fleet's, not this process's.
        fleet = FleetState(settings.redis_url) if settings.redis_url is not None else None
        if settings.auth_cache_ttl_s > 0:
            reg = CachedRegistry(reg, ttl_s=settings.auth_cache_ttl_s, revocations=fleet)
        local_limiter = TokenBucketLimiter(rate=settings.rate_limit_rps, burst=settings.rate_limit_burst)
        limiter: RateLimiter = local_limiter
        if fleet is not None:
            limiter = FleetRateLimiter(fleet, rate=settings.rate_limit_rps, burst=settings.rate_limit_burst,
                                       fallback=local_limiter)
        if settings.dev_tenant_id is not None:
            await reg.ensure_tenant(settings.dev_tenant_id, settings.dev_tenant_id)
        pool = RunnerPool(settings.runner_base_urls, discovery=_discovery(settings.runner_discovery),
                          affinity=_affinity(settings.runner_affinity),
                          health_interval_s=settings.runner_health_interval_s or 1.0, transport=runner_transport)
        nursery = getattr(app, "nursery", None)
        if nursery is not None and (settings.runner_health_interval_s > 0 or settings.runner_discovery == "dns"):
            nursery.start_soon(_watch_runners, pool, pool_scope)
        recorder = UsageRecorder(reg, flush_interval_s=settings.usage_flush_interval_s,
                                 max_pending_rows=settings.usage_max_pending_rows,
                                 retention_days=settings.usage_retention_days)
        app.extensions[STATE_KEY] = GatewayState(
            settings=settings,
            registry=reg,
            runner=RunnerClient(settings.runner_base_urls, service_token=settings.runner_service_token,
                                timeout_ms=settings.timeout_ms, attempts=settings.runner_attempts,
                                transport=runner_transport, pool=pool),
            signer=signer,
            limiter=limiter,
            manifests=ManifestCache(),
            store=store,
            audit=AuditWriter(reg),
            fleet=fleet,
            usage=recorder,
            budgets=BudgetGuard(reg, fleet=fleet, cache_ttl_s=settings.budget_cache_ttl_s),
            canaries=CanaryController(
                reg, interval_s=settings.canary_interval_s,
                fleet=FleetCanaryStats(settings.redis_url) if settings.redis_url is not None else None),
            journal_index=JournalIndexer(reg),
            journal_reader=_journal_admin.open_reader(settings, journal_store),
        )
        st = app.extensions[STATE_KEY]
        assert st.canaries is not None
        await st.canaries.refresh()  # route by the running canaries from the first request on
        if nursery is not None:
            nursery.start_soon(_run_canaries, st, canary_scope)
            nursery.start_soon(run_journal_tasks, st.journal_index, reg,
                               _journal_admin.object_deleter(settings, journal_store), journal_scope)
            # Without the app's nursery (no lifespan), usage is written by reads and the stop's flush instead,
            # and audit statuses as they come.
            nursery.start_soon(_background, st, usage_scope)

    @app.after_serving
    async def _close() -> None:
        pool_scope.cancel()
        canary_scope.cancel()
        st: GatewayState | None = app.extensions.pop(STATE_KEY, None)
        if st is None:
            return
        usage_scope.cancel()
        with trio.move_on_after(AUDIT_FLUSH_TIMEOUT_S):
            await st.audit.flush()  # rows of the last calls, before the registry closes
            if st.usage is not None:
                await st.usage.flush()  # the last usage sums, likewise
            if st.budgets is not None:
                await st.budgets.flush()
            if st.journal_index is not None:
                await st.journal_index.flush()
        journal_scope.cancel()
        await st.runner.aclose()
        if registry is None:
            await st.registry.aclose()
        if st.store is not None:
            await st.store.aclose()
        if journal_store is not None and journal_store is not st.store:
            await journal_store.aclose()
        if st.fleet is not None:
            await st.fleet.aclose()
        if st.canaries is not None:
            await st.canaries.aclose()

    @app.errorhandler(ApiError)
    async def _api_error(exc: ApiError) -> Response:
        response = json_response(exc.body(g.get("request_id")), exc.status)
        for name, value in exc.headers.items():
            response.headers[name] = value
        return response

    @app.errorhandler(RegistryError)
    async def _registry_error(exc: RegistryError) -> Response:
        log.error("registry failure: %s", exc.message)
        return json_response(ApiError("registry_unavailable").body(g.get("request_id")), 503)

    @app.errorhandler(RequestEntityTooLarge)
    async def _too_large(exc: RequestEntityTooLarge) -> Response:
        return await _api_error(PayloadTooLarge(settings.max_body_bytes))

    @app.errorhandler(HTTPException)
    async def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        return json_response(ApiError(_HTTP_CODES.get(status, "http_error")).body(g.get("request_id")), status)

    @app.after_request
    async def _security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    app.register_blueprint(_public.blueprint)
    app.register_blueprint(_admin.blueprint)
    app.register_blueprint(_installs.blueprint)
    app.register_blueprint(_canary_api.blueprint)
    app.register_blueprint(_host_page.blueprint)
    app.register_blueprint(_journal_admin.blueprint)
    app.register_blueprint(_usage_api.blueprint)

    async def _debug_caller(credentials: DebugCredentials) -> Principal:
        st: GatewayState = app.extensions[STATE_KEY]
        if credentials.token is not None:
            return await principal_for_token(st.registry, credentials.token)
        return await authenticate(st.registry, signer, credentials.headers, credentials.cookies)

    async def _debug_recheck(credentials: DebugCredentials) -> Principal:
        # An open tail's credential, read past the auth cache: a token revoked on any gateway closes the tail
        # within one period (the cache TTL) of the revocation.
        st: GatewayState = app.extensions[STATE_KEY]
        live = st.registry.inner if isinstance(st.registry, CachedRegistry) else st.registry
        if credentials.token is not None:
            return await principal_for_token(live, credentials.token)
        return await authenticate(live, signer, credentials.headers, credentials.cookies)

    app.register_blueprint(
        create_debug_blueprint(
            redis_url=settings.debug_redis_url,
            stream_prefix=settings.debug_stream_prefix,
            authorize=_debug_caller,
            allowed_origins=settings.allowed_origins,
            reauthorize=_debug_recheck,
            reauthorize_every=settings.auth_cache_ttl_s or DEFAULT_REAUTHORIZE_S,
        )
    )
    # The proxy's routes are answered in front of Quart (see _proxy.py); everything else goes on to it.
    app.asgi_app = _proxy.ProxyRoutes(app, app.asgi_app)  # type: ignore[method-assign,assignment,arg-type]
    return app


async def serve(
    settings: Settings | None = None,
    *,
    shutdown: trio.Event | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the gateway until ``shutdown`` is set (or SIGTERM/SIGINT), then drain in-flight requests.

    ``task_status.started`` reports the bound addresses (useful with port 0). In-flight requests get
    ``GATEWAY_DRAIN_TIMEOUT_S`` to finish, new ones are answered 503 ``draining`` at once, an idle gateway
    exits at once (see ``servicekit.serve_app``); then the registry, the runner client and the store close.

    Raises:
        bundles.StoreError: ``BUNDLE_STORE_BASE`` (or an ``STORAGE_S3_*`` setting) is invalid; raised before
            anything is bound.
    """
    settings = settings or Settings.from_env()
    configure_tracing("ext-gateway")  # OpenTelemetry, when OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/operations.md)
    app = create_app(settings)
    await serve_app(
        app,
        bind=settings.bind,
        drain_timeout=settings.drain_timeout_s,
        name="gateway",
        logger=log,
        shutdown=shutdown,
        accesslog="-",
        task_status=task_status,
    )


async def _background(st: GatewayState, scope: trio.CancelScope) -> None:
    """The audit statuses' and usage recorder's flushes and the budget counters' pushes to Redis, until the app
    stops."""
    with scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(st.audit.run)
            if st.usage is not None:
                nursery.start_soon(st.usage.run)
            if st.budgets is not None and st.fleet is not None:
                nursery.start_soon(st.budgets.run)


async def _run_canaries(st: GatewayState, scope: trio.CancelScope) -> None:
    with scope:
        assert st.canaries is not None
        await st.canaries.run(st)


async def _watch_runners(pool: RunnerPool, scope: trio.CancelScope) -> None:
    with scope:
        await pool.run()


def _discovery(value: str) -> Discovery:
    return "dns" if value == "dns" else "static"


def _affinity(value: str) -> Affinity:
    return "content-hash" if value == "content-hash" else "round-robin"
