"""Services in child processes (``benchmarks._serve``): start, wait until they listen, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

import httpx
import trio

from ._common import ROOT, SERVICE_TOKEN, Workspace

START_TIMEOUT: Final = 60.0
STOP_TIMEOUT: Final = 15.0

# Variables of the developer's shell that would steer a child service: never inherited.
_FOREIGN_PREFIXES: Final = ("RUNNER_", "GATEWAY_", "EXT_", "STORAGE_", "VAULT_", "UI_PROXY_", "SIGNING_")
_FOREIGN: Final = frozenset({"BUNDLE_STORE_BASE", "REGISTRY_BASE_URL", "REGISTRY_DATABASE", "DEV_TENANT_ID"})


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(_FOREIGN_PREFIXES) and k not in _FOREIGN and "proxy" not in k.lower()}
    env.update(extra)
    return env


@dataclass
class Service:
    kind: str
    url: str
    process: trio.Process
    log_path: Path
    _log: TextIO
    started_s: float  # seconds from spawn to listening

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            with trio.move_on_after(STOP_TIMEOUT):
                await self.process.wait()
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
        self._log.close()


async def start_service(ws: Workspace, kind: str, env: Mapping[str, str], *, name: str | None = None) -> Service:
    """Spawn ``python -m benchmarks._serve KIND`` with ``env`` (on top of a cleaned environment).

    Raises:
        RuntimeError: the service exited or did not listen within :data:`START_TIMEOUT` (its log is quoted).
    """
    run_dir = ws.fresh_dir(name or kind)
    url_file = run_dir / "url"
    log_path = run_dir / "service.log"
    log_file = log_path.open("w")
    started = trio.current_time()
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "benchmarks._serve", kind, str(url_file)],
        cwd=ROOT, env=clean_env(env), stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
    )
    with trio.move_on_after(START_TIMEOUT):
        while not url_file.exists():
            if process.returncode is not None:
                break
            await trio.sleep(0.02)
    if not url_file.exists():
        if process.returncode is None:
            process.kill()
        await process.wait()
        log_file.close()
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{kind} did not start (exit {process.returncode}); its log:\n{tail}")
    return Service(kind, url_file.read_text().strip(), process, log_path, log_file,
                   trio.current_time() - started)


def runner_env(ws: Workspace, cache_root: Path, **settings: str) -> dict[str, str]:
    """The environment of a runner over the run's store and ``cache_root`` (extra ``RUNNER_*`` settings)."""
    var_dir = ws.fresh_dir("runner-var")
    env = {
        "RUNNER_BIND": "127.0.0.1:0",
        "RUNNER_VAR_DIR": str(var_dir),
        "BUNDLE_STORE_BASE": ws.store_uri,
        "EXT_CACHE_ROOT": str(cache_root),
        "RUNNER_SERVICE_TOKEN": SERVICE_TOKEN,
        "EXT_STATIC_STRICT_VALIDATION": "false",
        # One process unless a benchmark asks for more (``workers`` compares 1 with the default, one per CPU):
        # the other benchmarks' rows state one runner process on their side.
        "RUNNER_WORKERS": "1",
    }
    env.update(settings)
    return env


async def start_runner(ws: Workspace, cache_root: Path | None = None, **settings: str) -> Service:
    return await start_service(ws, "runner", runner_env(ws, cache_root or ws.warm_cache, **settings))


async def warmup(client: httpx.AsyncClient, url: str, content_hash: str) -> float:
    """``POST /v1/warmup``: fetch, verify and compile (or load) a bundle; returns the runner's seconds."""
    response = await client.post(f"{url}/v1/warmup", json={"content_hash": content_hash}, timeout=300,
                                 headers={"authorization": f"Bearer {SERVICE_TOKEN}"})
    response.raise_for_status()
    return float(response.json()["seconds"])


async def metric(client: httpx.AsyncClient, url: str, name: str) -> float:
    """One un-labelled sample of ``GET /metrics``."""
    response = await client.get(f"{url}/metrics", timeout=10)
    response.raise_for_status()
    for line in response.text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise RuntimeError(f"{name} not found in {url}/metrics")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (``/proc/PID/stat``)."""
    # The command name (field 2) may hold spaces: count the fields after its closing parenthesis.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    pids = [pid]
    for child in _children(pid):
        pids.extend(tree(child))
    return pids


def rss(pids: list[int]) -> int:
    """Summed ``VmRSS`` of ``pids`` in bytes (processes gone meanwhile count 0)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


def process_count(service: Service) -> str:
    """``"1 process"`` / ``"3 processes"``: the service's process tree (a runner may run worker processes)."""
    count = len(tree(service.process.pid))
    return f"{count} process{'es' if count > 1 else ''}"
