"""``python -m gateway_quart`` as a real process: refuses bad settings, serves, stops on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import httpx
import trio


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "EXT_GATEWAY_", "RUNNER_"))}
    env.update({"RUNNER_BASE_URL": "http://127.0.0.1:9", "REGISTRY_DATABASE": str(tmp_path / "reg.sqlite3")})
    env.update(extra)
    return env


async def test_unknown_setting_stops_start_up(tmp_path: Path) -> None:
    result = await trio.run_process(
        [sys.executable, "-m", "gateway_quart"], env=_env(tmp_path, GATEWAY_ADMIN_TOKNE="x"),
        capture_stdout=True, capture_stderr=True, check=False,
    )
    assert result.returncode == 2
    assert b"GATEWAY_ADMIN_TOKNE" in result.stderr


async def test_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = _env(tmp_path, GATEWAY_BIND="127.0.0.1:0", DEV_TENANT_ID="dev")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            command = [sys.executable, "-m", "gateway_quart"]
            process: trio.Process = await nursery.start(
                partial(trio.run_process, command, env=env, stderr=subprocess.PIPE, check=False)
            )
            assert process.stderr is not None
            log = b""
            while (match := re.search(rb"Running on (http://127\.0\.0\.1:\d+)", log)) is None:
                chunk = await process.stderr.receive_some()
                assert chunk, log.decode()
                log += chunk
            url = match.group(1).decode()
            async with httpx.AsyncClient(base_url=url) as client:
                assert (await client.get("/readyz")).json() == {"status": "ready"}
            process.send_signal(signal.SIGTERM)
            nursery.start_soon(_drain, process.stderr)
            assert await process.wait() == 0
    assert (tmp_path / "reg.sqlite3").exists()


async def _drain(stream: trio.abc.ReceiveStream) -> None:
    while await stream.receive_some():
        pass
