"""The gateway's Prometheus metrics, served at ``GET /metrics`` (``_public.py``) to ``GATEWAY_METRICS_TOKEN``.

The gateway faces tenants' browsers and API clients, so unlike the runner's (an internal service) its
``/metrics`` is not open: a scraper sends ``Authorization: Bearer <GATEWAY_METRICS_TOKEN>``, and without that
setting the route answers 403 ``metrics_disabled`` (it would tell anyone the platform's traffic and error
rates). Labels are bounded: an HTTP status, an error code of the contract, never a tenant or an extension (the
per-tenant figures are the usage API's, ``GET /api/v1/usage/...``).

What each gateway process counts (sum over the fleet's gateways in the dashboard):

- ``gateway_proxy_requests_total{status}``: answers of ``/api/ext/...`` and ``/api/ext-proxy/...`` by HTTP
  status, refusals included (401, 403, 404, 413, 429, ...); 499 for a client that went away first;
- ``gateway_proxy_request_seconds``: their time in the gateway, from the app's first look at the request to
  its answer handed to the server;
- ``gateway_proxy_inflight``: proxied calls in progress;
- ``gateway_runner_failures_total{error}``: runner calls that failed (``bad_gateway``, ``runner_unavailable``,
  ``gateway_timeout`` for the hop; the runner's own refusals by their error code, e.g. ``overloaded``);
- ``gateway_audit_pending_statuses``, ``gateway_usage_pending_rows``, ``gateway_usage_dropped_answers_total``:
  the background writers' backlogs (a registry that is slow or down shows here first).
"""

from __future__ import annotations

from typing import Final, final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ._audit import AuditWriter
from ._usage import UsageRecorder

__all__ = ["CONTENT_TYPE", "GatewayMetrics"]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

LATENCY_BUCKETS: Final = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds: a proxied call takes from ~1 ms (a refusal) to the runner's deadline (30 s by default)."""


@final
class GatewayMetrics:
    """The metrics of one gateway process (its own registry: two apps in one process do not mix)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self._requests = Counter("gateway_proxy_requests", "Proxied calls answered, by HTTP status.", ["status"],
                                 registry=r)
        self._seconds = Histogram("gateway_proxy_request_seconds", "Time of a proxied call in the gateway.",
                                  buckets=LATENCY_BUCKETS, registry=r)
        self.inflight = Gauge("gateway_proxy_inflight", "Proxied calls in progress.", registry=r)
        self._runner_failures = Counter("gateway_runner_failures", "Runner calls that failed, by error code.",
                                        ["error"], registry=r)
        self._audit_pending = Gauge("gateway_audit_pending_statuses",
                                    "Audit rows whose final status is not written yet.", registry=r)
        self._usage_pending = Gauge("gateway_usage_pending_rows", "Usage sums not written to the registry yet.",
                                    registry=r)
        self._usage_dropped = Counter("gateway_usage_dropped_answers",
                                      "Answers not accounted for usage because too many sums were pending.",
                                      registry=r)
        self._dropped_seen = 0
        self._by_status: dict[int, Counter] = {}  # labels() costs more than inc(): one child per status, kept

    def answered(self, status: int, seconds: float) -> None:
        """One proxied call answered with ``status`` after ``seconds``."""
        child = self._by_status.get(status)
        if child is None:
            child = self._by_status[status] = self._requests.labels(str(status))
        child.inc()
        self._seconds.observe(seconds)

    def runner_failed(self, error: str) -> None:
        """A runner call failed with ``error`` (an error code of the contract or of the hop)."""
        self._runner_failures.labels(error).inc()

    def render(self, audit: AuditWriter, usage_recorder: UsageRecorder | None) -> bytes:
        """The exposition text, with the background writers' backlogs read now."""
        self._audit_pending.set(audit.pending)
        if usage_recorder is not None:
            usage = usage_recorder.statistics()
            self._usage_pending.set(usage.pending_rows)
            if usage.dropped > self._dropped_seen:
                self._usage_dropped.inc(usage.dropped - self._dropped_seen)
                self._dropped_seen = usage.dropped
        return generate_latest(self.registry)
