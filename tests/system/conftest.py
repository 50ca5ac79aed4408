"""The runner fixtures of tests/runner/http, shared with the system tests."""

from tests.runner.http.conftest import runner_settings, shared

__all__ = ["runner_settings", "shared"]
