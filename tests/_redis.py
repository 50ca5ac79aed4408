"""A real ``redis-server`` on a free port, for tests of the debug-event stream.

``redis_server`` is a session fixture yielding a :class:`RedisServer` (its ``url`` is ``redis://127.0.0.1:N/0``);
a conftest makes it visible with ``from tests._redis import redis_server  # noqa: F401``. Tests that take Redis
away mid-run (``stop()`` then ``start()`` again on the same port) use their own server from
:func:`running_redis` so the shared one stays up for everyone else.

Nothing is persisted (``--save "" --appendonly no``): a restart comes back empty. Tests keep to their own keys
(random tenant ids) instead of flushing, so they never depend on the order they run in.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

REDIS_SERVER: Final = shutil.which("redis-server") or "/usr/bin/redis-server"
HOST: Final = "127.0.0.1"
DEFAULT_READY_TIMEOUT: Final = 10.0
DEFAULT_STOP_TIMEOUT: Final = 5.0
_START_ATTEMPTS: Final = 3  # another process may take the port between probing it and redis binding it


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process. ``start()`` returns once it answers PING; ``stop()`` kills it."""

    def __init__(self, *, ready_timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        self._ready_timeout = ready_timeout
        self._dir = Path(tempfile.mkdtemp(prefix="redis-test-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the server was never started")
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> str:
        """Start on the previous port if there was one (a restart), else on a free port; return the URL."""
        if self.running:
            return self.url
        fixed = self.port is not None
        for _ in range(1 if fixed else _START_ATTEMPTS):
            port = self.port if self.port is not None else _free_port()
            if self._launch(port):
                self.port = port
                return self.url
        raise RuntimeError(f"redis-server did not start; log:\n{self._log_tail()}")

    def _launch(self, port: int) -> bool:
        self._proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(port),
                "--bind", HOST,
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self._dir),
                "--logfile", str(self._dir / "redis.log"),
                "--daemonize", "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:  # exited: most likely the port was taken
                self._proc = None
                return False
            if _ping(port):
                return True
            time.sleep(0.01)
        self.stop()
        return False

    def stop(self) -> None:
        """Kill the server and wait until the port no longer answers."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        try:
            proc.wait(timeout=DEFAULT_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not hang in practice
            proc.terminate()

    def restart(self) -> str:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _log_tail(self) -> str:
        try:
            return (self._dir / "redis.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A server of one's own, started now and closed at the end of the block."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server
