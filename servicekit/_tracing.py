"""Tracing: OpenTelemetry, off unless configured, one trace per request across gateway -> runner -> guest ->
host calls.

Configuration is OpenTelemetry's own: tracing turns on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set and ``OTEL_SDK_DISABLED`` is not ``true``; spans then go to that
collector over OTLP/HTTP in batches, and every other ``OTEL_*`` variable (headers, sampler, resource
attributes, ``OTEL_SERVICE_NAME``) works as the SDK documents. Off, the API's no-op tracer costs a context
lookup; a W3C ``traceparent`` that arrives is still passed on, so a platform that traces keeps its traces
joined across our hop.

- :func:`configure_tracing` (each service's ``serve()``): install the SDK's provider when configured.
- :func:`server_span`: the span of one request, joined to the caller's ``traceparent``.
- :func:`inject_trace`: the current span's ``traceparent`` (and ``tracestate``) into outgoing headers.
- :func:`child_span`: an inner span, only inside a traced request (free otherwise).
- :func:`tracer`: a tracer for inner spans.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, Final

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Tracer

__all__ = ["child_span", "configure_tracing", "inject_trace", "server_span", "tracer", "tracing_configured"]

log = logging.getLogger("servicekit.tracing")

_ENDPOINTS: Final = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_configured = False


def tracing_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for traces to be exported."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(env.get(name, "").strip() for name in _ENDPOINTS)


def configure_tracing(service_name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Install the SDK's tracer provider with the OTLP/HTTP exporter when the environment asks for it.

    Idempotent per process (OpenTelemetry's global provider can be set once). Returns whether spans are
    exported. ``service_name`` is used unless ``OTEL_SERVICE_NAME`` says otherwise.
    """
    global _configured
    env = os.environ if environ is None else environ
    if _configured or not tracing_configured(env):
        return _configured
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or service_name}).merge(
        OTELResourceDetector().detect())
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True
    log.info("tracing on: spans exported over OTLP/HTTP as %s", resource.attributes.get("service.name"))
    return True


def tracer(name: str) -> Tracer:
    """A tracer (the no-op one until a provider is installed; it follows the global provider)."""
    return trace.get_tracer(name)


@contextmanager
def server_span(tracer_: Tracer, name: str, headers: Any,
                attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:
    """The current span for one request received with ``headers`` (a mapping, or werkzeug's ``Headers``: anything
    with ``get`` and ``keys``), a child of their ``traceparent``.

    With no tracer provider installed and no ``traceparent`` to pass on, there is nothing to record or propagate:
    the request gets the invalid span (attributes are dropped, inner spans skipped) without parsing headers.
    """
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider) and headers.get("traceparent") is None:
        yield trace.INVALID_SPAN
        return
    parent = propagate.extract(headers)
    with tracer_.start_as_current_span(name, context=parent, kind=SpanKind.SERVER,
                                       attributes=dict(attributes or {})) as span:
        yield span


@contextmanager
def child_span(tracer_: Tracer, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Span | None]:
    """A child of the current span, or nothing (``None``) outside a traced request: the hot path stays free."""
    if not trace.get_current_span().get_span_context().is_valid:
        yield None
        return
    with tracer_.start_as_current_span(name, attributes=dict(attributes or {})) as span:
        yield span


def inject_trace(headers: MutableMapping[str, str]) -> None:
    """Put the current span's W3C ``traceparent`` (and ``tracestate``) into ``headers``; nothing when there is none."""
    if trace.get_current_span().get_span_context().is_valid:
        propagate.inject(headers)
