"""A real redis-server (session) and the runner harness of tests/runner/http, for the shared-store tests."""

from tests._redis import redis_server
from tests.runner.http.conftest import runner_settings, shared

__all__ = ["redis_server", "runner_settings", "shared"]
