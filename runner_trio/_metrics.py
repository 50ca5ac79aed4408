"""Prometheus metrics of one runner, under the names dashboards rely on (see docs/operations.md).

Each app gets its own ``CollectorRegistry`` so that several apps in one process (tests, benchmarks) keep
separate counts. Cache figures are read from the cache's own statistics at scrape time rather than counted
twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Final, final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["OUTCOMES", "RunnerMetrics"]

# The *_created series double the exposition for no dashboard's benefit.
disable_created_metrics()  # type: ignore[no-untyped-call]

OUTCOMES: Final = ("ok", "timeout", "memory", "trap", "denied", "bundle_error", "bad_request", "overloaded")

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

# Cache statistic -> (metric name, help, kind). Fed by a callable returning the cache's current figures.
_CACHE_METRICS: Final = {
    "fills": ("runner_bundle_fetches_total", "Bundles fetched from the store and verified.", "counter"),
    "builds": ("runner_component_compiles_total", "Components compiled from bytes.", "counter"),
    "compiled_hits": ("runner_component_cache_hits_total", "Compiled components found in memory.", "counter"),
    "precompiled_loads": ("runner_precompiled_loads_total", "Precompiled artifacts deserialized.", "counter"),
    "evictions": ("runner_cache_evictions_total", "Disk cache entries evicted.", "counter"),
    "disk_full": (
        "runner_cache_disk_full_total",
        "Cache writes that found the cache filesystem full (ENOSPC/EDQUOT), before and after eviction.",
        "counter",
    ),
    "bytes": ("runner_cache_bytes", "Bytes held by the disk cache.", "gauge"),
}


class _CacheCollector(Collector):
    def __init__(self, source: Callable[[], Mapping[str, float]]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        stats = self._source()
        for key, (name, doc, kind) in _CACHE_METRICS.items():
            value = float(stats.get(key, 0))
            if kind == "counter":
                yield CounterMetricFamily(name.removesuffix("_total"), doc, value=value)
            else:
                yield GaugeMetricFamily(name, doc, value=value)


@final
class RunnerMetrics:
    """The runner's metrics. ``render()`` gives the Prometheus text exposition."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.invocations = Counter(
            "runner_invocations", "Invocations by outcome.", ["outcome"], registry=r
        )
        for outcome in OUTCOMES:
            self.invocations.labels(outcome)
        self.invocation_seconds = Histogram(
            "runner_invocation_seconds",
            "Time from admission to response, per invocation.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.inflight = Gauge("runner_inflight_invocations", "Invocations running now.", registry=r)
        self.debug_events = Counter("runner_debug_events", "Debug events published.", registry=r)
        self.debug_events_dropped = Counter(
            "runner_debug_events_dropped", "Debug events dropped (Redis slow, down or rate limited).", registry=r
        )
        self.egress_denied = Counter("runner_egress_denied", "Guest fetches refused by egress policy.", registry=r)
        self.idempotent_replays = Counter(
            "runner_idempotent_replays", "Invocations answered from the idempotency cache.", registry=r
        )

    def watch_cache(self, source: Callable[[], Mapping[str, float]]) -> None:
        """Expose the cache's statistics (read from ``source`` at every scrape)."""
        self.registry.register(_CacheCollector(source))

    def render(self) -> bytes:
        return generate_latest(self.registry)
