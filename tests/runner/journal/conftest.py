"""The runner harness of tests/runner/http, for the journal tests."""

from __future__ import annotations

from tests.runner.http.conftest import runner, runner_settings, shared

__all__ = ["runner", "runner_settings", "shared"]
