"""A real PostgreSQL server on a free port, for the registry, storage and idempotency tests.

``postgres_server`` is a session fixture: one ``initdb`` + ``pg_ctl`` cluster in a temp dir (trust auth,
TCP on 127.0.0.1 only, no fsync: a test cluster is thrown away), started once and stopped at the end.
``postgres_url`` is a function fixture: a fresh database on it for each test (``postgresql://...``), dropped
afterwards. A conftest makes them visible with ``from tests._postgres import postgres_server, postgres_url``.

The binaries come from Debian's ``postgresql`` package (``scripts/test`` installs it when ``initdb`` is
missing): ``$PG_BINDIR``, else ``pg_config --bindir``, else the newest ``/usr/lib/postgresql/*/bin``.
PostgreSQL refuses to run as root; as root the server runs as the ``postgres`` user the package creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import psycopg
import pytest

HOST: Final = "127.0.0.1"
SUPERUSER: Final = "postgres"
DEFAULT_READY_TIMEOUT_S: Final = 60
_START_ATTEMPTS: Final = 3  # another process may take the port between probing it and postgres binding it


def _bindir() -> Path:
    candidates: list[str] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(os.environ["PG_BINDIR"])
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            candidates.append(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                             check=True).stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) not found; install Debian's postgresql package")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """One PostgreSQL cluster. ``start()`` returns once it accepts connections; ``close()`` stops and removes it."""

    def __init__(self) -> None:
        self._bin = _bindir()
        self._dir = Path(tempfile.mkdtemp(prefix="postgres-test-"))
        self._data = self._dir / "data"
        self._user = SUPERUSER if os.geteuid() == 0 else None
        self.port: int | None = None

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, user=self._user, capture_output=True, text=True, check=False,
                              cwd=self._dir, stdin=subprocess.DEVNULL)

    def start(self) -> None:
        if self._user is not None:
            shutil.chown(self._dir, self._user)
        done = self._run(str(self._bin / "initdb"), "-D", str(self._data), "-U", SUPERUSER, "-A", "trust",
                         "-E", "UTF8", "--no-sync", "--no-instructions")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr[-2000:]}")
        for _ in range(_START_ATTEMPTS):
            port = _free_port()
            options = (f"-p {port} -c listen_addresses={HOST} -c unix_socket_directories='' -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            done = self._run(str(self._bin / "pg_ctl"), "-D", str(self._data), "-l", str(self._dir / "log"),
                             "-o", options, "-w", "-t", str(DEFAULT_READY_TIMEOUT_S), "start")
            if done.returncode == 0:
                self.port = port
                return
        raise RuntimeError(f"postgres did not start: {done.stderr[-1000:]}\n{self._log_tail()}")

    def url(self, database: str = "postgres") -> str:
        if self.port is None:
            raise RuntimeError("the server was never started")
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self.port is not None:
            self._run(str(self._bin / "pg_ctl"), "-D", str(self._data), "-m", "immediate", "-w", "stop")
            self.port = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def _log_tail(self) -> str:
        try:
            return (self._dir / "log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A cluster of one's own, started now and removed at the end of the block."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database for this test."""
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        postgres_server.drop_database(url)
