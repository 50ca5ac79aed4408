"""one_line: outside text cannot start a line of its own in our logs, nor forge an escape."""

from __future__ import annotations

import pytest

from servicekit import one_line


@pytest.mark.parametrize(
    ("given", "logged"),
    [
        ("plain text, ünïcode ✓", "plain text, ünïcode ✓"),
        ("a\nERROR runner_trio: forged", "a\\nERROR runner_trio: forged"),
        ("cr\rlf\r\n", "cr\\rlf\\r\\n"),
        ("esc \x1b[31mred", "esc \\u001b[31mred"),
        ("separators \u2028\u2029\x85", "separators \\u2028\\u2029\\u0085"),
        ("already \\n escaped", "already \\\\n escaped"),
        ("nul\x00", "nul\\u0000"),
    ],
)
def test_control_characters_are_escaped(given: str, logged: str) -> None:
    assert one_line(given) == logged
    assert "\n" not in one_line(given)
    assert "\r" not in one_line(given)


def test_length_is_bounded() -> None:
    assert one_line("x" * 10, limit=4) == "xxxx…"
