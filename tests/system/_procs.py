"""The services as an operator runs them: ``python -m runner_trio`` and ``python -m gateway_quart`` in child
processes, bound to ``127.0.0.1:0``, and what each process holds (RSS, open files) read from ``/proc``.

A service logs ``<name> listening on http://127.0.0.1:PORT`` once it accepts connections
(``servicekit.serve_app``); :func:`start_service` waits for that line, so no port is guessed in advance.
No pytest here: ``benchmarks/_soak.py`` uses these helpers too.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import trio

START_TIMEOUT_S: Final = 60.0
"""A cold interpreter importing wasmtime on a loaded 2-core machine takes seconds, not a minute."""
STOP_TIMEOUT_S: Final = 20.0

_LISTENING: Final = re.compile(rb"listening on (http://\S+)")
# Variables of the developer's shell that would steer a child service: never inherited.
_FOREIGN_PREFIXES: Final = ("RUNNER_", "GATEWAY_", "EXT_", "STORAGE_", "VAULT_", "UI_PROXY_", "SIGNING_")
_FOREIGN: Final = frozenset({"BUNDLE_STORE_BASE", "REGISTRY_BASE_URL", "REGISTRY_DATABASE", "DEV_TENANT_ID",
                             "DEBUG_STREAM_REDIS_URL"})


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(_FOREIGN_PREFIXES) and k not in _FOREIGN and "proxy" not in k.lower()}
    env.update(extra)
    return env


@dataclass(frozen=True)
class ProcessSample:
    """What one process holds at one moment (None where ``/proc`` cannot tell)."""

    rss_bytes: int | None
    open_files: int | None
    cpu_s: float | None = None  # user + system CPU time so far


def sample_process(pid: int) -> ProcessSample:
    """RSS (``VmRSS`` of ``/proc/PID/status``), open file descriptors (entries of ``/proc/PID/fd``) and CPU
    time (``utime`` + ``stime`` of ``/proc/PID/stat``)."""
    rss: int | None = None
    files: int | None = None
    cpu: float | None = None
    try:
        # The command name (field 2) may hold spaces: count the fields after its closing parenthesis.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024  # the kernel reports kB
                break
        files = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError):
        pass
    return ProcessSample(rss, files, cpu)


@dataclass
class Service:
    """A service in a child process; ``url`` is what it reported listening on."""

    name: str
    url: str
    process: trio.Process
    log_path: Path

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    async def stop(self) -> int | None:
        """SIGTERM, wait for the drain (bounded), then SIGKILL; returns the exit status."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            with trio.move_on_after(STOP_TIMEOUT_S):
                await self.process.wait()
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode


async def start_service(name: str, module: str, env: Mapping[str, str], log_path: Path) -> Service:
    """Run ``python -m MODULE`` with ``env`` (over a cleaned environment) until it logs where it listens.

    Raises:
        RuntimeError: it exited, or did not listen within :data:`START_TIMEOUT_S` (its log is quoted).
    """
    log_file = log_path.open("wb")
    try:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", module], env=clean_env(env), stdin=subprocess.DEVNULL, stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    finally:
        log_file.close()  # the child holds its own copy
    url = None
    with trio.move_on_after(START_TIMEOUT_S):
        while url is None and process.returncode is None:
            found = _LISTENING.search(await trio.to_thread.run_sync(log_path.read_bytes))
            if found is None:
                await trio.sleep(0.05)
            else:
                url = found.group(1).decode()
    if url is None:
        if process.returncode is None:
            process.kill()
        await process.wait()
        tail = (await trio.to_thread.run_sync(log_path.read_text, "utf-8", "replace"))[-3000:]
        raise RuntimeError(f"{name} did not start (exit {process.returncode}); its log:\n{tail}")
    return Service(name, url, process, log_path)


def runner_env(*, var_dir: Path, store_uri: str, cache_root: Path, service_token: str,
               **settings: str) -> dict[str, str]:
    """A runner on a free port over a ``file://`` store and a cache root (extra settings by variable name)."""
    return {
        "RUNNER_BIND": "127.0.0.1:0",
        "RUNNER_VAR_DIR": str(var_dir),
        "BUNDLE_STORE_BASE": store_uri,
        "EXT_CACHE_ROOT": str(cache_root),
        "RUNNER_SERVICE_TOKEN": service_token,
        "EXT_STATIC_STRICT_VALIDATION": "false",
        **settings,
    }


def gateway_env(*, runner_urls: list[str], registry: Path, store_uri: str, service_token: str, admin_token: str,
                **settings: str) -> dict[str, str]:
    """A gateway on a free port in front of ``runner_urls`` (extra settings by variable name)."""
    return {
        "GATEWAY_BIND": "127.0.0.1:0",
        "RUNNER_BASE_URL": ",".join(runner_urls),
        "RUNNER_SERVICE_TOKEN": service_token,
        "REGISTRY_DATABASE": str(registry),
        "BUNDLE_STORE_BASE": store_uri,
        "GATEWAY_ADMIN_TOKEN": admin_token,
        **settings,
    }
