"""``RUNNER_GUEST_THREADS``: how many worker threads of one process run guests at once (default: as many as
``RUNNER_MAX_CONCURRENCY`` admits; docs/runner.md says when fewer pay)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner_trio import Runtime, Settings
from runner_trio._errors import ConfigError


@pytest.mark.parametrize(("env", "threads"), [({}, 8), ({"RUNNER_MAX_CONCURRENCY": "3"}, 3),
                                              ({"RUNNER_GUEST_THREADS": "1"}, 1),
                                              ({"RUNNER_GUEST_THREADS": "2", "RUNNER_MAX_CONCURRENCY": "16"}, 2)])
async def test_the_guest_thread_limiter_has_the_configured_size(tmp_path: Path, env: dict[str, str],
                                                                  threads: int) -> None:
    runtime = await Runtime.open(Settings.from_env({**env, "RUNNER_VAR_DIR": str(tmp_path)}))
    try:
        assert runtime.guest_threads is not None
        assert runtime.guest_threads.total_tokens == threads
    finally:
        await runtime.aclose()


def test_a_negative_count_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="RUNNER_GUEST_THREADS"):
        Settings.from_env({"RUNNER_GUEST_THREADS": "-1"})
