"""``should_record``: every policy, failed and not, with the random draw injected."""

from __future__ import annotations

import pytest

from contract import JournalPolicy, parse_journal_policy
from journal import should_record


def _never() -> float:
    raise AssertionError("rand() drawn when the decision did not need it")


@pytest.mark.parametrize(
    ("policy", "failed", "expected"),
    [
        ("off", False, False),
        ("off", True, False),
        ("errors", False, False),
        ("errors", True, True),
        ("all", False, True),
        ("all", True, True),
        ("sample:0.5", True, True),
    ],
)
def test_policies_that_need_no_draw(policy: str, failed: bool, expected: bool) -> None:
    assert should_record(parse_journal_policy(policy), failed=failed, rand=_never) is expected


@pytest.mark.parametrize(("draw", "expected"), [(0.0, True), (0.249, True), (0.25, False), (0.99, False)])
def test_sample_records_its_share_of_successes(draw: float, expected: bool) -> None:
    assert should_record(parse_journal_policy("sample:0.25"), failed=False, rand=lambda: draw) is expected


def test_sample_of_one_records_everything() -> None:
    assert should_record(parse_journal_policy("sample:1"), failed=False, rand=lambda: 0.999999)


def test_no_policy_records_nothing() -> None:
    assert should_record(None, failed=True, rand=_never) is False


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown journal policy mode 'sometimes'"):
        should_record(JournalPolicy("sometimes"), failed=False)
