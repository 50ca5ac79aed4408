"""Prometheus metrics of one runner, under the names dashboards rely on (see docs/operations.md).

Each app gets its own ``CollectorRegistry`` so that several apps in one process (tests, benchmarks) keep
separate counts. Cache figures are read from the cache's own statistics at scrape time rather than counted
twice.

**Worker processes.** A runner of several workers (``_workers.py``) sets ``PROMETHEUS_MULTIPROC_DIR`` for
each of them before it starts: prometheus-client then keeps every value in a file of that directory per
process, and each worker's ``/metrics`` reads all of them (``MultiProcessCollector``), so whichever worker
answers the scrape reports the whole runner. Counters and histograms add up over every worker that ever ran
(a replaced worker's counts stay); the in-flight gauge sums the live workers only (the supervisor marks a
dead worker's files). The cache's figures are then copied into real counters: by each worker at its own
scrapes and every :data:`CACHE_SYNC_INTERVAL_S`, so another worker's latest fills may show up that much later.
``runner_worker_requests_total{worker}`` counts the HTTP requests each worker served (how evenly the kernel
spread the connections).

**Usage.** ``runner_usage_<field>_total{tenant,extension}`` adds up the ``usage`` of every answer (one counter
per ``contract.USAGE_FIELDS`` field) and ``runner_usage_calls_total{tenant,extension,capability}`` the host
calls per capability; with worker processes they add up over the workers like the other counters. Two labels
per tenant and extension make series a fleet of many tenants may not want: ``usage_per_tenant=False``
(``RUNNER_USAGE_METRICS_PER_TENANT=false``) keeps one unlabelled series per field (``capability`` only for
the calls), and the per-tenant figures come from the answers (the gateway's usage API).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Final, final

import trio
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from contract import USAGE_FIELDS

__all__ = ["CACHE_SYNC_INTERVAL_S", "OUTCOMES", "RunnerMetrics", "multiprocess_mode"]

# The *_created series double the exposition for no dashboard's benefit.
disable_created_metrics()  # type: ignore[no-untyped-call]

OUTCOMES: Final = ("ok", "timeout", "memory", "trap", "denied", "bundle_error", "bad_request", "overloaded")

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

CACHE_SYNC_INTERVAL_S: Final = 0.5
"""With worker processes: how often a worker copies its cache figures into the shared metric files."""
_MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_mode() -> bool:
    """Whether prometheus-client keeps values in shared files (set before it was imported, by the supervisor)."""
    return bool(os.environ.get(_MULTIPROC_ENV))

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
    """The runner's metrics. ``render()`` gives the Prometheus text exposition.

    Args:
        worker: the worker's index (the ``worker`` label of ``runner_worker_requests_total``).
        multiprocess: report every worker's files (default: when ``PROMETHEUS_MULTIPROC_DIR`` is set).
    """

    def __init__(self, *, worker: int = 1, multiprocess: bool | None = None, usage_per_tenant: bool = True) -> None:
        self.multiprocess = multiprocess_mode() if multiprocess is None else multiprocess
        self._cache_source: Callable[[], Mapping[str, float]] | None = None
        self._cache_synced: dict[str, float] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.invocations = Counter(
            "runner_invocations", "Invocations by outcome.", ["outcome"], registry=r
        )
        # One child per outcome, made here: labels() validates and locks on every call.
        self._outcomes = {outcome: self.invocations.labels(outcome) for outcome in OUTCOMES}
        self.invocation_seconds = Histogram(
            "runner_invocation_seconds",
            "Time from admission to response, per invocation.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.inflight = Gauge(
            "runner_inflight_invocations", "Invocations running now.", registry=r, multiprocess_mode="livesum"
        )
        self.worker_requests = Counter(
            "runner_worker_requests", "HTTP requests served, by worker process.", ["worker"], registry=r
        ).labels(str(worker))
        self._cache_counters: dict[str, Counter | Gauge] = {}
        if self.multiprocess:
            for key, (name, doc, kind) in _CACHE_METRICS.items():
                if kind == "counter":
                    self._cache_counters[key] = Counter(name.removesuffix("_total"), doc, registry=r)
                else:
                    self._cache_counters[key] = Gauge(name, doc, registry=r, multiprocess_mode="livemax")
        self.debug_events = Counter("runner_debug_events", "Debug events published.", registry=r)
        self.debug_events_dropped = Counter(
            "runner_debug_events_dropped", "Debug events dropped (Redis slow, down or rate limited).", registry=r
        )
        self.egress_denied = Counter("runner_egress_denied", "Guest fetches refused by egress policy.", registry=r)
        self.idempotent_replays = Counter(
            "runner_idempotent_replays", "Invocations answered from the idempotency cache.", registry=r
        )
        self.journal_entries = Counter(
            "runner_journal_entries", "Invocation journal entries, by result (written, dropped, failed).",
            ["result"], registry=r,
        )
        for result in ("written", "dropped", "failed"):
            self.journal_entries.labels(result)
        self.usage_per_tenant = usage_per_tenant
        labels = ("tenant", "extension") if usage_per_tenant else ()
        self.usage = {
            name: Counter(f"runner_usage_{name}", f"Sum of usage.{name} over the answers.", labels, registry=r)
            for name in USAGE_FIELDS
        }
        self.usage_calls = Counter(
            "runner_usage_calls", "Host calls by capability (usage.calls.<capability>).", (*labels, "capability"),
            registry=r,
        )

        # The labelled children, looked up once per (tenant, extension): labels() costs more than inc() itself,
        # and there are eight counters per answer. As many entries as the registry has series anyway.
        self._usage_children: dict[tuple[str, ...], dict[str, Counter]] = {}
        self._calls_children: dict[tuple[str, ...], Counter] = {}

    def count_invocation(self, outcome: str, seconds: float) -> None:
        """One invocation over, with its ``outcome`` (one of :data:`OUTCOMES`) after ``seconds``."""
        child = self._outcomes.get(outcome)
        (child if child is not None else self.invocations.labels(outcome)).inc()
        self.invocation_seconds.observe(seconds)

    def record_usage(self, tenant: str, extension: str, usage: Mapping[str, float]) -> None:
        """Add one answer's ``usage`` to the counters (keys outside the contract's fields and ``calls.*`` are
        ignored; zeros are skipped)."""
        keys = (tenant, extension) if self.usage_per_tenant else ()
        children = self._usage_children.get(keys)
        if children is None:
            children = {name: counter.labels(*keys) if keys else counter for name, counter in self.usage.items()}
            self._usage_children[keys] = children
        for name, amount in usage.items():
            if amount <= 0:
                continue
            child = children.get(name)
            if child is not None:
                child.inc(amount)
            elif name.startswith("calls."):
                call_keys = (*keys, name.removeprefix("calls."))
                calls = self._calls_children.get(call_keys)
                if calls is None:
                    calls = self._calls_children[call_keys] = self.usage_calls.labels(*call_keys)
                calls.inc(amount)

    def watch_cache(self, source: Callable[[], Mapping[str, float]]) -> None:
        """Expose the cache's statistics (read from ``source`` at every scrape, and with worker processes
        also every :data:`CACHE_SYNC_INTERVAL_S` while :meth:`run` runs)."""
        if self.multiprocess:
            self._cache_source = source
        else:
            self.registry.register(_CacheCollector(source))

    def sync_cache(self) -> None:
        """Copy what the cache counted since the last call into the shared metric files (worker processes)."""
        if self._cache_source is None:
            return
        stats = self._cache_source()
        for key, metric in self._cache_counters.items():
            value = float(stats.get(key, 0))
            if isinstance(metric, Gauge):
                metric.set(value)
            else:
                delta = value - self._cache_synced.get(key, 0.0)
                if delta > 0:
                    metric.inc(delta)
                    self._cache_synced[key] = value

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """With worker processes, keep the cache figures in the shared files current; else return at once."""
        task_status.started()
        while self._cache_source is not None:
            self.sync_cache()
            await trio.sleep(CACHE_SYNC_INTERVAL_S)

    def render(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        self.sync_cache()
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
