"""Fixtures shared with the system tests: the runner harness of tests/runner/http and a real redis-server."""

from tests._redis import redis_server
from tests.runner.http.conftest import runner_settings, shared

__all__ = ["redis_server", "runner_settings", "shared"]
