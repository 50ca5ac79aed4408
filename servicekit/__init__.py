"""What the runner and the gateway share in how they are built: settings tables and serving.

- :class:`SettingsTable` of :class:`Setting` rows: every environment variable a service reads, with its
  parser, default and one line of documentation. :meth:`SettingsTable.read` refuses unknown variables in the
  service's namespaces and invalid values with an :class:`InvalidSetting` naming the variable.
- Parsers for those rows: :func:`text`, :func:`integer`, :func:`boolean`, :func:`host_port`, :func:`path`,
  :func:`backend_url` (a backend's URL, only the schemes that exist), ...
- :func:`serve_app`: an ASGI app on Hypercorn's trio worker with ``task_status.started(binds)`` and a
  graceful drain on SIGTERM or a shutdown event: readiness flips at once, new requests answer 503
  :data:`DRAINING` (never started, safe to send elsewhere), requests in flight finish, an idle service exits
  at once. Several processes may serve one socket, each taking a new connection only when it holds the
  fewest (:class:`ConnectionBalance`).
- :func:`harden_connections`: HTTP/1.1 connections closed when they must be (a Hypercorn + quart-trio fault,
  explained in ``_connections.py``), ``Connection: close`` on early error answers (:func:`declares_body`
  says which requests have a body to wait for).
- :func:`json_errors`: JSON (never HTML) for unknown routes, wrong methods, every HTTP error and unexpected
  exceptions (a 500 with a request id, logged with its traceback); :func:`unexpected_error` answers such an
  exception the same way for a route served outside Quart.
- the deployment mode (:func:`mode`, :func:`enforce_mode`, :class:`Requirement`): ``development`` or
  ``production``; a non-loopback bind needs a token in both, production refuses each unmet requirement.
- :func:`configure_logging`: the log as ``text`` (control characters escaped, context fields appended) or
  ``json`` (one object a line, python-json-logger), chosen by a ``*_LOG_FORMAT`` setting (:func:`log_format`).
- :func:`migrate_postgres`: versioned schema migrations on PostgreSQL that run once across replicas
  (a bookkeeping table and an advisory lock), for every service that keeps state there; :func:`statement_timeout`
  bounds each statement of their pools (:data:`DEFAULT_STATEMENT_TIMEOUT_S`).
- :func:`configure_tracing`, :func:`server_span`, :func:`child_span`, :func:`inject_trace`, :func:`tracer`:
  OpenTelemetry tracing, off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, ``traceparent`` passed on either way.
- :func:`new_request_id`: a request id for a request that brought none, without a system call (``_ids.py``).
- :func:`render_settings_doc` (and ``python -m servicekit docs/configuration.md``): the settings tables of
  the documentation generated from the code.

servicekit imports neither service.
"""

from ._accesslog import AccessLogger
from ._balance import ConnectionBalance
from ._connections import declares_body, harden_connections
from ._docs import render_settings_doc, resolve_table, table_refs
from ._errors import InvalidSetting, ServiceKitError
from ._ids import new_request_id
from ._json_errors import json_errors, unexpected_error
from ._logging import (
    CONTEXT_FIELDS,
    LOG_FORMATS,
    JsonLogFormatter,
    TextLogFormatter,
    configure_logging,
    log_format,
    log_formatter,
)
from ._logtext import DEFAULT_MAX_LOG_TEXT, one_line
from ._mode import DEVELOPMENT, MODES, PRODUCTION, Mode, Requirement, enforce_mode, is_loopback_bind, mode
from ._parsers import (
    POSTGRES_SCHEMES,
    REDIS_SCHEMES,
    backend_url,
    boolean,
    comma_list,
    host_port,
    http_url,
    integer,
    optional_path,
    optional_text,
    path,
    secret,
    text,
    url_scheme,
)
from ._postgres import DEFAULT_STATEMENT_TIMEOUT_S, PostgresMigration, SchemaTooNew, migrate_postgres, statement_timeout
from ._serve import DEFAULT_SIGNALS, DRAIN_LINGER_S, DRAIN_RETRY_AFTER_S, DRAINING, serve_app
from ._settings import REQUIRED, Setting, SettingsTable
from ._tracing import child_span, configure_tracing, inject_trace, server_span, tracer, tracing_configured

__all__ = [
    "CONTEXT_FIELDS",
    "DEFAULT_MAX_LOG_TEXT",
    "DEFAULT_SIGNALS",
    "DEFAULT_STATEMENT_TIMEOUT_S",
    "DEVELOPMENT",
    "DRAINING",
    "DRAIN_LINGER_S",
    "DRAIN_RETRY_AFTER_S",
    "LOG_FORMATS",
    "MODES",
    "POSTGRES_SCHEMES",
    "PRODUCTION",
    "REDIS_SCHEMES",
    "REQUIRED",
    "AccessLogger",
    "ConnectionBalance",
    "InvalidSetting",
    "JsonLogFormatter",
    "Mode",
    "PostgresMigration",
    "Requirement",
    "SchemaTooNew",
    "ServiceKitError",
    "Setting",
    "SettingsTable",
    "TextLogFormatter",
    "backend_url",
    "boolean",
    "child_span",
    "comma_list",
    "configure_logging",
    "configure_tracing",
    "declares_body",
    "enforce_mode",
    "harden_connections",
    "host_port",
    "http_url",
    "inject_trace",
    "integer",
    "is_loopback_bind",
    "json_errors",
    "log_format",
    "log_formatter",
    "migrate_postgres",
    "mode",
    "new_request_id",
    "one_line",
    "optional_path",
    "optional_text",
    "path",
    "render_settings_doc",
    "resolve_table",
    "secret",
    "serve_app",
    "server_span",
    "statement_timeout",
    "table_refs",
    "text",
    "tracer",
    "tracing_configured",
    "unexpected_error",
    "url_scheme",
]
