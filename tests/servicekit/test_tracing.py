"""servicekit tracing without a collector (a fresh interpreter: no tracer provider installed, as in a service
whose OTEL_EXPORTER_OTLP_ENDPOINT is unset): nothing is recorded, a received traceparent is still passed on."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json
from opentelemetry import trace
from servicekit import inject_trace, server_span, tracer

t = tracer("probe")
out = {}
with server_span(t, "request", {}) as span:
    headers = {}
    inject_trace(headers)
    out["untraced"] = {"valid": span.get_span_context().is_valid, "injected": headers}
received = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
with server_span(t, "request", {"traceparent": received}) as span:
    headers = {}
    inject_trace(headers)
    out["traced"] = {"recording": span.is_recording(), "injected": headers}
out["provider"] = type(trace.get_tracer_provider()).__name__
print(json.dumps(out))
"""


def test_without_a_collector_nothing_is_recorded_and_a_received_traceparent_is_passed_on() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    seen = json.loads(result.stdout)
    assert seen["provider"] == "ProxyTracerProvider"
    assert seen["untraced"] == {"valid": False, "injected": {}}
    assert seen["traced"]["recording"] is False
    assert seen["traced"]["injected"]["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
