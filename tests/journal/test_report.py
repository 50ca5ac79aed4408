"""Response diffs and replay reports (the JSON the runner answers and the gateway stores)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from contract import ExecuteResult, encode_execute_result
from journal import VERDICTS, Divergence, ReplayReport, ReportInvalid, diff_responses


def _result(body: bytes, *, status: int = 200, headers: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    doc = encode_execute_result(ExecuteResult(status, headers or {"content-type": "text/plain"}, body, None))
    return doc | extra


def test_identical_responses_have_no_diff() -> None:
    assert diff_responses(_result(b"hello\nworld"), _result(b"hello\nworld")) == []


def test_journal_entry_and_usage_are_ignored() -> None:
    recorded = _result(b"x", journal_entry="a" * 32, usage={"guest_cpu_ms": 1.0})
    replayed = _result(b"x", usage={"guest_cpu_ms": 2.5})
    assert diff_responses(recorded, replayed) == []


def test_text_body_is_diffed_line_by_line() -> None:
    lines = diff_responses(_result(b"one\ntwo\nthree"), _result(b"one\nTWO\nthree"))
    assert lines[:2] == ["--- recorded", "+++ replayed"]
    assert "-two" in lines
    assert "+TWO" in lines
    assert " one" in lines


def test_a_trailing_newline_is_a_difference() -> None:
    assert diff_responses(_result(b"a"), _result(b"a\n")) != []


def test_status_headers_and_error_are_diffed() -> None:
    recorded = _result(b"", status=200, headers={"x-b": "1", "X-A": "2"})
    replayed = _result(b"", status=500, headers={"x-b": "1"}) | {"error": "trap"}
    lines = diff_responses(recorded, replayed)
    assert "-status: 200" in lines
    assert "+status: 500" in lines
    assert "-header X-A: 2" in lines
    assert "-error: null" in lines
    assert '+error: "trap"' in lines


def test_binary_body_is_compared_as_base64() -> None:
    lines = diff_responses(_result(b"\xff\x00\x01"), _result(b"\xff\x00\x02"))
    assert "-" + base64.b64encode(b"\xff\x00\x01").decode() in lines
    assert any(line.startswith(" body (3 bytes, base64)") for line in lines)


def test_malformed_result_docs_still_diff() -> None:
    lines = diff_responses({"status": 200, "body_b64": "%%%"}, {"status": 200, "body_b64": None})
    assert "-body_b64 (not base64): %%%" in lines
    assert "+body: null" in lines


def _full_report() -> ReplayReport:
    return ReplayReport(
        verdict="calls_differ",
        divergence=Divergence(
            index=3,
            expected={"i": 3, "fn": "alga:extension/storage#get", "args": ["k"], "result": {"$v": "ok", "p": None}},
            actual={"fn": "alga:extension/storage#set", "args": ["k", {"$b": "aGk="}]},
            reason="called alga:extension/storage#set, recorded alga:extension/storage#get",
        ),
        response_diff=["--- recorded", "+++ replayed", "-a", "+b"],
        calls_replayed=3,
        entry_id="f" * 32,
        content_hash="sha256:" + "ab" * 32,
    )


def test_report_json_round_trip() -> None:
    report = _full_report()
    doc = report.to_json()
    assert ReplayReport.from_json(doc) == report
    assert ReplayReport.from_json(orjson.dumps(doc)) == report
    assert ReplayReport.from_json(orjson.dumps(doc).decode()) == report
    assert not report.identical


def test_minimal_report_round_trip() -> None:
    report = ReplayReport(verdict="identical", calls_replayed=7)
    assert report.identical
    assert report.to_json() == {
        "verdict": "identical",
        "divergence": None,
        "response_diff": [],
        "calls_replayed": 7,
        "entry_id": None,
        "content_hash": None,
    }
    assert ReplayReport.from_json(report.to_json()) == report
    assert ReplayReport.from_json({"verdict": "new_failure", "future_field": 1}) == ReplayReport("new_failure")


def test_every_verdict_is_accepted() -> None:
    assert VERDICTS == ("identical", "response_differs", "calls_differ", "new_failure")
    for verdict in VERDICTS:
        assert ReplayReport.from_json({"verdict": verdict}).verdict == verdict


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b"{not json", "not JSON"),
        ([], "must be an object"),
        ({}, "verdict must be one of"),
        ({"verdict": "maybe"}, "verdict must be one of"),
        ({"verdict": "identical", "response_diff": "x"}, "response_diff must be a list of strings"),
        ({"verdict": "identical", "response_diff": [1]}, "response_diff must be a list of strings"),
        ({"verdict": "identical", "calls_replayed": -1}, "calls_replayed must be a non-negative integer"),
        ({"verdict": "identical", "calls_replayed": True}, "calls_replayed must be a non-negative integer"),
        ({"verdict": "identical", "entry_id": 5}, "entry_id must be a string or null"),
        ({"verdict": "calls_differ", "divergence": "x"}, "divergence must be an object"),
        ({"verdict": "calls_differ", "divergence": {"index": 0}}, "divergence.reason must be a string"),
        ({"verdict": "calls_differ", "divergence": {"index": "0", "reason": ""}}, "divergence.index"),
        (
            {"verdict": "calls_differ", "divergence": {"index": 0, "reason": "", "expected": []}},
            "divergence.expected must be an object or null",
        ),
    ],
)
def test_malformed_reports_are_refused_clearly(doc: Any, message: str) -> None:
    with pytest.raises(ReportInvalid, match=message):
        ReplayReport.from_json(doc)


def test_constructing_an_unknown_verdict_is_refused() -> None:
    with pytest.raises(ReportInvalid):
        ReplayReport(verdict="fine")
