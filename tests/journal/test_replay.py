"""The replayer's engine-free decisions: call matching, calls left unmade, and the verdict."""

from __future__ import annotations

from typing import Any

import pytest

from contract import ExecuteResult, encode_execute_result
from journal import Divergence, ReplayReport, call_divergence, make_report, missing_calls_divergence

CALLS: list[dict[str, Any]] = [
    {"i": 0, "fn": "wasi:clocks/wall-clock#now", "args": [], "result": {"$r": {"seconds": 1, "nanoseconds": 2}}},
    {"i": 1, "fn": "alga:extension/storage#get", "args": ["orders", {"$t": ["k", 1]}], "result": {"$v": "none"}},
]


def test_the_recorded_call_matches() -> None:
    assert call_divergence(CALLS, 0, "wasi:clocks/wall-clock#now", []) is None
    # A tuple built by the runner compares as the list the entry stores.
    assert call_divergence(CALLS, 1, "alga:extension/storage#get", ("orders", {"$t": ("k", 1)})) is None


def test_another_function() -> None:
    divergence = call_divergence(CALLS, 1, "alga:extension/storage#set", ["orders", "k"])
    assert divergence == Divergence(
        1,
        CALLS[1],
        {"fn": "alga:extension/storage#set", "args": ["orders", "k"]},
        "called alga:extension/storage#set, recorded alga:extension/storage#get",
    )


def test_other_arguments() -> None:
    divergence = call_divergence(CALLS, 1, "alga:extension/storage#get", ["orders", {"$t": ["k", 2]}])
    assert divergence is not None
    assert divergence.reason == "called alga:extension/storage#get with other arguments than recorded"
    assert divergence.expected == CALLS[1]


def test_a_call_past_the_recording() -> None:
    divergence = call_divergence(CALLS, 2, "wasi:random/random#get-random-u64", [])
    assert divergence is not None
    assert divergence.index == 2
    assert divergence.expected is None
    assert divergence.reason == "called wasi:random/random#get-random-u64 after the 2 recorded host calls"


def test_calls_left_unmade() -> None:
    assert missing_calls_divergence(CALLS, 2) is None
    divergence = missing_calls_divergence(CALLS, 1)
    assert divergence is not None
    assert (divergence.index, divergence.actual) == (1, None)
    assert "ended after 1 host calls; the recording has 2 (next: alga:extension/storage#get)" in divergence.reason


def _result(body: bytes, status: int = 200, error: str | None = None) -> dict[str, Any]:
    return encode_execute_result(ExecuteResult(status, {"content-type": "text/plain"}, body, error))


def _entry(outcome: str = "ok", body: bytes = b"total: 3") -> dict[str, Any]:
    status = 200 if outcome == "ok" else 500
    return {"entry_id": "e" * 32, "calls": CALLS, "outcome": outcome, "result": _result(body, status)}


@pytest.mark.parametrize(
    ("entry", "replayed", "outcome", "divergence", "verdict"),
    [
        (_entry(), _result(b"total: 3"), "ok", None, "identical"),
        (_entry(), _result(b"total: 4"), "ok", None, "response_differs"),
        (_entry(), _result(b"", 500, "trap"), "trap", None, "new_failure"),
        (_entry("trap"), _result(b"total: 3", 500), "trap", None, "identical"),
        (_entry("trap"), _result(b"total: 3"), "ok", None, "response_differs"),
        (_entry(), _result(b"total: 3"), "ok", Divergence(1, CALLS[1], None, "ended early"), "calls_differ"),
        (_entry(), _result(b"", 500), "trap", Divergence(1, CALLS[1], None, "ended early"), "calls_differ"),
    ],
)
def test_verdicts(
    entry: dict[str, Any], replayed: dict[str, Any], outcome: str, divergence: Divergence | None, verdict: str
) -> None:
    report = make_report(
        entry, replayed, replayed_outcome=outcome, calls_replayed=2, divergence=divergence, content_hash="sha256:ab"
    )
    assert report.verdict == verdict
    assert report.divergence == divergence
    assert (report.response_diff == []) == (replayed == entry["result"])
    assert report.entry_id == "e" * 32
    assert report.content_hash == "sha256:ab"
    assert ReplayReport.from_json(report.to_json()) == report


def test_a_replay_reported_identical_carries_no_diff() -> None:
    report = make_report(
        _entry(), _result(b"total: 3") | {"usage": {"guest_cpu_ms": 9.0}}, replayed_outcome="ok", calls_replayed=2
    )
    assert report.identical
    assert report.response_diff == []
