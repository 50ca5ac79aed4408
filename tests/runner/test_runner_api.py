"""The runner's public names, pinned: a change to them is a deliberate change to this test."""

from __future__ import annotations

import runner_trio


def test_public_names_are_pinned() -> None:
    assert set(runner_trio.__all__) == {
        "BodyTooLarge", "BundleUnavailable", "ConfigError", "ExecuteFailed", "MissingRoutingHeaders", "Overloaded",
        "RequestInvalid", "RunnerError", "Runtime", "SecretDecryptFailed", "Settings", "UnknownCapabilities",
        "create_app", "execute", "parse_execute_request", "serve", "serve_workers",
        "BodyTooLargeForMemory", "parse_execute_json",
    }
    assert len(runner_trio.__all__) == len(set(runner_trio.__all__))
    for name in runner_trio.__all__:
        assert hasattr(runner_trio, name), name
