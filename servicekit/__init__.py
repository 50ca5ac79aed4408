"""What the runner and the gateway share in how they are built: settings tables and serving.

- :class:`SettingsTable` of :class:`Setting` rows: every environment variable a service reads, with its
  parser, default and one line of documentation. :meth:`SettingsTable.read` refuses unknown variables in the
  service's namespaces and invalid values with an :class:`InvalidSetting` naming the variable.
- Parsers for those rows: :func:`text`, :func:`integer`, :func:`boolean`, :func:`host_port`, :func:`path`, ...
- :func:`serve_app`: an ASGI app on Hypercorn's trio worker with ``task_status.started(binds)`` and a
  graceful drain on SIGTERM or a shutdown event: readiness flips at once, new requests answer 503
  :data:`DRAINING` (never started, safe to send elsewhere), requests in flight finish, an idle service exits
  at once.
- :func:`harden_connections`: HTTP/1.1 connections closed when they must be (a Hypercorn + quart-trio fault,
  explained in ``_connections.py``), ``Connection: close`` on early error answers.
- :func:`json_errors`: JSON (never HTML) for unknown routes, wrong methods, every HTTP error and unexpected
  exceptions (a 500 with a request id, logged with its traceback).
- :func:`configure_tracing`, :func:`server_span`, :func:`child_span`, :func:`inject_trace`, :func:`tracer`:
  OpenTelemetry tracing, off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, ``traceparent`` passed on either way.
- :func:`render_settings_doc` (and ``python -m servicekit docs/configuration.md``): the settings tables of
  the documentation generated from the code.

servicekit imports neither service.
"""

from ._connections import harden_connections
from ._docs import render_settings_doc, resolve_table, table_refs
from ._errors import InvalidSetting, ServiceKitError
from ._json_errors import json_errors
from ._logtext import DEFAULT_MAX_LOG_TEXT, one_line
from ._parsers import (
    boolean,
    comma_list,
    host_port,
    http_url,
    integer,
    optional_path,
    optional_text,
    path,
    text,
)
from ._serve import DEFAULT_SIGNALS, DRAIN_LINGER_S, DRAIN_RETRY_AFTER_S, DRAINING, serve_app
from ._settings import REQUIRED, Setting, SettingsTable
from ._tracing import child_span, configure_tracing, inject_trace, server_span, tracer, tracing_configured

__all__ = [
    "DEFAULT_MAX_LOG_TEXT",
    "DEFAULT_SIGNALS",
    "DRAINING",
    "DRAIN_LINGER_S",
    "DRAIN_RETRY_AFTER_S",
    "REQUIRED",
    "InvalidSetting",
    "ServiceKitError",
    "Setting",
    "SettingsTable",
    "boolean",
    "child_span",
    "comma_list",
    "configure_tracing",
    "harden_connections",
    "host_port",
    "http_url",
    "inject_trace",
    "integer",
    "json_errors",
    "one_line",
    "optional_path",
    "optional_text",
    "path",
    "render_settings_doc",
    "resolve_table",
    "serve_app",
    "server_span",
    "table_refs",
    "text",
    "tracer",
    "tracing_configured",
]
