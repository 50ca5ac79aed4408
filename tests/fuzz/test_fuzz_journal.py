"""Journal entries and replay reports read from storage or the wire: any bytes either open or fail with the
journal's own errors, and a sealed entry survives only unchanged."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from journal import (
    JournalCorrupt,
    JournalKeyError,
    JournalKeyring,
    ReplayReport,
    ReportInvalid,
    entry_key,
    open_entry,
    seal_entry,
)
from tests.fuzz import FUZZ

RING = JournalKeyring.parse(JournalKeyring.generate("k1") + "," + JournalKeyring.generate("k0"))
AAD = entry_key("acme", "billing", "e" * 32)

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(st.binary(max_size=300))
@example(b"AJ1\x02k1" + b"\x00" * 40)
@example(b"AJ1\xff")
@example(b"AJ1\x02\xff\xfe" + b"\x00" * 40)
def test_unsealed_bytes_fail_cleanly(data: bytes) -> None:
    # Bytes nobody sealed never authenticate: they fail, and only with the journal's own errors.
    with pytest.raises((JournalCorrupt, JournalKeyError)):
        open_entry(data, RING, aad=AAD)


@FUZZ
@given(st.dictionaries(st.text(max_size=8), _json, max_size=5), st.integers(0, 10_000), st.integers(0, 255))
def test_a_sealed_entry_opens_only_unchanged(doc: dict[str, Any], position: int, flip: int) -> None:
    blob = seal_entry(doc, RING, aad=AAD)
    assert open_entry(blob, RING, aad=AAD) == doc
    tampered = bytearray(blob)
    tampered[position % len(blob)] ^= flip or 1
    try:
        open_entry(bytes(tampered), RING, aad=AAD)
    except (JournalCorrupt, JournalKeyError):
        return
    raise AssertionError("a tampered entry opened")


@FUZZ
@given(_json)
def test_any_json_is_a_report_or_report_invalid(doc: Any) -> None:
    try:
        report = ReplayReport.from_json(doc)
    except ReportInvalid:
        return
    assert ReplayReport.from_json(report.to_json()) == report
