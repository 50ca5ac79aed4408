"""The CLI package's public names, pinned: a change to them is a deliberate change to this test."""

from __future__ import annotations

import extctl


def test_public_names_are_pinned() -> None:
    assert set(extctl.__all__) == {
        "CommandFailed", "EXIT_OK", "EXIT_REJECTED", "EXIT_USAGE", "ExtctlError", "UsageError", "build_parser",
        "main",
    }
    assert len(extctl.__all__) == len(set(extctl.__all__))
    for name in extctl.__all__:
        assert hasattr(extctl, name), name
