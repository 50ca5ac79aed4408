"""``measure_usage`` from an invocation's counters, and ``runner_usage_*_total`` with and without per-tenant
labels (``RUNNER_USAGE_METRICS_PER_TENANT``)."""

from __future__ import annotations

from contract import USAGE_FIELDS
from runner_trio import Settings
from runner_trio._metrics import RunnerMetrics
from runner_trio._usage import measure_usage
from runner_trio.engine import InvocationCounters


def test_usage_is_none_until_the_guest_ran_then_every_field() -> None:
    counters = InvocationCounters()
    counters.host_call("http")
    assert measure_usage(counters, memory_mb=128, debug_events=0) is None
    counters.add_pair("guest_runs", 1, "guest_cpu_us", 2_500)
    counters.add("guest_wall_us", 4_000)
    counters.add_pair("egress_requests", 1, "egress_bytes", 300)
    counters.host_call("http")
    counters.host_call(None)  # a WASI function: a host call, no capability
    usage = measure_usage(counters, memory_mb=128, debug_events=2)
    assert usage is not None
    assert list(usage)[: len(USAGE_FIELDS)] == list(USAGE_FIELDS)
    assert usage["guest_cpu_ms"] == 2.5
    assert usage["memory_mb_ms"] == 128 * 4.0
    assert (usage["egress_requests"], usage["egress_bytes"], usage["debug_events"]) == (1, 300, 2)
    assert usage["calls.http"] == 2
    assert counters["host_calls"] == 3


def _series(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_counters_per_tenant_by_default_and_unlabelled_when_turned_off() -> None:
    usage = {"guest_cpu_ms": 1.5, "egress_bytes": 100, "storage_ops": 0, "calls.storage": 2, "other": 9}
    labelled = RunnerMetrics(multiprocess=False)
    labelled.record_usage("t1", "e1", usage)
    labelled.record_usage("t2", "e1", usage)
    text = labelled.render().decode()
    assert _series(text, "runner_usage_egress_bytes_total") == [
        'runner_usage_egress_bytes_total{extension="e1",tenant="t1"} 100.0',
        'runner_usage_egress_bytes_total{extension="e1",tenant="t2"} 100.0',
    ]
    assert 'runner_usage_calls_total{capability="storage",extension="e1",tenant="t1"} 2.0' in text
    # Every field has its series for a (tenant, extension) once one answer came (a zero where nothing was used).
    assert 'runner_usage_storage_ops_total{extension="e1",tenant="t1"} 0.0' in text

    flat = RunnerMetrics(multiprocess=False, usage_per_tenant=False)
    flat.record_usage("t1", "e1", usage)
    flat.record_usage("t2", "e1", usage)
    text = flat.render().decode()
    assert _series(text, "runner_usage_egress_bytes_total") == ["runner_usage_egress_bytes_total 200.0"]
    assert _series(text, "runner_usage_guest_cpu_ms_total") == ["runner_usage_guest_cpu_ms_total 3.0"]
    assert 'runner_usage_calls_total{capability="storage"} 4.0' in text
    assert "t1" not in text


def test_the_setting_turns_the_labels_off() -> None:
    assert Settings.from_env({}).usage_metrics_per_tenant is True
    assert Settings.from_env({"RUNNER_USAGE_METRICS_PER_TENANT": "false"}).usage_metrics_per_tenant is False
