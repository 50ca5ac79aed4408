"""What one invocation used, as answered in ``ExecuteResult.usage`` and counted in ``runner_usage_*_total``.

The engine counts as it goes (``InvocationCounters``: the guest thread's CPU and wall time, egress and storage
calls, host calls per capability); this module turns the counters into the contract's fields once the guest
has run, so the gateway can bill and budget by them (``contract.USAGE_FIELDS``, plus ``calls.<capability>``):

* ``guest_cpu_ms``: CPU time of the guest's worker thread (``time.thread_time``) from the Store's creation to
  its close: guest code, instantiation and the host functions' own work, not waits on the network or sleeps;
* ``memory_mb_ms``: the invocation's memory cap in MiB times that wall time in ms (what it reserved, as the
  memory budget of admission counts it);
* ``egress_requests`` / ``egress_bytes``: guest HTTP requests that went out (not the ones the egress policy
  refused) and their request plus response body bytes;
* ``storage_ops`` / ``storage_bytes``: storage calls that reached the backend and the value bytes read plus
  written;
* ``debug_events``: debug events the invocation published (none when the runner has no debug Redis);
* ``calls.<capability>``: host calls per interface (``calls.http``, ``calls.storage``, ``calls.secrets``...),
  denied ones included: what the least-privilege report compares with the grants.
"""

from __future__ import annotations

from typing import Final

from .engine import InvocationCounters

__all__ = ["CALLS_PREFIX", "measure_usage"]

CALLS_PREFIX: Final = "calls."
"""Prefix of the per-capability host call counts in ``usage`` (``calls.http``)."""

_MS_DIGITS: Final = 3


def measure_usage(counters: InvocationCounters, *, memory_mb: int, debug_events: int) -> dict[str, float] | None:
    """The ``usage`` of an invocation whose guest started, else None (nothing ran, nothing to bill).

    Args:
        counters: the invocation's counters, after ``invoke()`` returned or raised.
        memory_mb: the invocation's memory cap.
        debug_events: events its debug sink published.
    """
    values = counters.snapshot()
    if not values["guest_runs"]:
        return None
    wall_ms = values["guest_wall_us"] / 1000
    usage: dict[str, float] = {
        "guest_cpu_ms": round(values["guest_cpu_us"] / 1000, _MS_DIGITS),
        "memory_mb_ms": round(memory_mb * wall_ms, _MS_DIGITS),
        "egress_requests": values["egress_requests"],
        "egress_bytes": values["egress_bytes"],
        "storage_ops": values["storage_ops"],
        "storage_bytes": values["storage_bytes"],
        "debug_events": debug_events,
    }
    for capability, count in sorted(counters.calls().items()):
        usage[f"{CALLS_PREFIX}{capability}"] = count
    return usage
