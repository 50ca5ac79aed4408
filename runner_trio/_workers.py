"""The runner as ``RUNNER_WORKERS`` processes behind one port: a supervisor and its workers.

``python -m runner_trio`` with more than one worker runs :func:`supervise`. It binds the port (one socket, so
port 0 picks one port for all; the first worker to finish starting makes it listen), makes the runner's run
directory (shared caps, metrics files, the connection table), and starts ``python -m runner_trio --worker I
...`` once per worker, handing each the socket. Each worker is a whole runner (``serve`` on ``fd://N``) that
accepts from that one socket, and takes a new connection only when it holds the fewest open connections of
the workers (then round robin between equals; ``servicekit``'s ``ConnectionBalance``): the kernel's
``SO_REUSEPORT`` hashing split a few kept-alive connections as unevenly as coin flips (3:1 and 4:0 of 4 in
half the benchmark's slices, tripling one worker's queue), and a plain shared accept queue lets whichever
worker wakes first take them all. A worker reports readiness by writing ``ready`` to a pipe once it listens;
the supervisor logs ``runner listening on ...`` when all of them have.

Supervision: a worker that exits while the runner is serving is replaced (after a short back-off that grows
while replacements keep dying before they are ready); one that dies during the first start stops the runner
(a bad setting would only die again). Its slot of the connection table is cleared when it exits, so the others
stop leaving new connections for it. SIGTERM/SIGINT start the drain: the supervisor forwards SIGTERM to every
worker, waits for each to drain and exit (``RUNNER_DRAIN_TIMEOUT_S`` plus a margin, then SIGKILL), and exits.
A worker whose supervisor disappears drains and exits on its own.

What is runner-wide across workers (see docs/runner.md): the disk cache with its single flight (file locks in
the cache), precompiled artifacts, the per-tenant and per-extension caps (``_shared_caps``), idempotency
records (SQLite in WAL mode or Redis), the metrics (prometheus-client's multiprocess mode) and the connection
table.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final, NoReturn

import trio
from prometheus_client.multiprocess import mark_process_dead

from servicekit import ConnectionBalance

from ._config import Settings
from ._errors import WorkersFailed

__all__ = ["WorkerRole", "available_cpus", "connection_table", "run_worker", "serve_workers", "supervise",
           "worker_args"]

log = logging.getLogger("runner_trio.workers")

RESTART_BACKOFF_S: Final = 0.5
"""Pause before replacing a worker; doubled for each replacement that dies before it is ready."""
MAX_RESTART_BACKOFF_S: Final = 30.0
STOP_MARGIN_S: Final = 10.0
"""Beyond the drain timeout, how long a worker may take to exit after SIGTERM before it is killed."""
PARENT_CHECK_S: Final = 1.0
"""How often a worker checks that its supervisor is still there."""
METRICS_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
READY: Final = b"ready\n"


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), the default number of workers."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class WorkerRole:
    """What a worker process knows of its place in the runner."""

    index: int
    """1..count; a replacement takes the index of the worker it replaces."""
    count: int
    run_dir: Path
    """The runner instance's shared directory: ``caps/`` (shared admission caps), ``metrics/`` (unless the
    operator set ``PROMETHEUS_MULTIPROC_DIR``), ``connections`` (the connection table)."""
    listen_fd: int
    """The runner's socket, bound by the supervisor and shared by every worker."""

    @property
    def caps_dir(self) -> Path:
        return self.run_dir / "caps"

    @property
    def connections(self) -> Path:
        return connection_table(self.run_dir)


def connection_table(run_dir: Path) -> Path:
    """Where the workers' ``ConnectionBalance`` table lives: one slot per worker, slot ``index - 1``."""
    return run_dir / "connections"


def worker_args(argv: Sequence[str]) -> tuple[WorkerRole, int] | None:
    """Parse a worker's command line (``--worker I --workers N --run-dir D --listen-fd FD --ready-fd FD``);
    None without it."""
    if "--worker" not in argv:
        return None
    parser = argparse.ArgumentParser(prog="python -m runner_trio")
    parser.add_argument("--worker", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--ready-fd", type=int, required=True)
    args = parser.parse_args(list(argv))
    return WorkerRole(args.worker, args.workers, args.run_dir, args.listen_fd), args.ready_fd


async def run_worker(settings: Settings, role: WorkerRole, ready_fd: int) -> None:
    """Serve as worker ``role.index``: report readiness on ``ready_fd``; drain on SIGTERM or orphaning."""
    from ._app import serve  # the supervisor never builds an app: it keeps its imports light

    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_parent, os.getppid(), shutdown)
        async with trio.open_nursery() as server:
            binds = await server.start(partial(serve, settings, shutdown=shutdown, worker=role))
            log.info("runner worker %d (pid %d) serving %s", role.index, os.getpid(), ", ".join(binds))
            with os.fdopen(ready_fd, "wb") as ready:
                ready.write(READY)
        nursery.cancel_scope.cancel()  # drained: stop watching the supervisor


async def _watch_parent(parent: int, shutdown: trio.Event) -> None:
    # Nothing notifies a child of its parent's death (short of prctl): poll.
    while os.getppid() == parent:  # noqa: ASYNC110
        await trio.sleep(PARENT_CHECK_S)
    log.warning("runner worker: the supervisor (pid %d) is gone: draining", parent)
    shutdown.set()


async def serve_workers(
    settings: Settings,
    *,
    shutdown: trio.Event | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """What ``python -m runner_trio`` runs: ``RUNNER_WORKERS`` worker processes under this one as their
    supervisor (:func:`supervise`), or, with one worker, this process serving alone (``serve``).

    Raises:
        WorkersFailed: a worker exited before it was ready during the first start.
    """
    workers = settings.workers or available_cpus()
    if workers > 1:
        await supervise(settings, workers=workers, shutdown=shutdown, task_status=task_status)
    else:
        from ._app import serve

        await serve(settings, shutdown=shutdown, task_status=task_status)


# -- the supervisor ---------------------------------------------------------------------------------------


@dataclass
class _Worker:
    index: int
    process: trio.Process | None = None
    ready: bool = False


async def supervise(
    settings: Settings,
    *,
    workers: int,
    shutdown: trio.Event | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``workers`` worker processes on ``settings.bind`` until SIGTERM/SIGINT or ``shutdown``, then drain.

    The workers read their settings from this process's environment (``RUNNER_BIND`` replaced by the bound
    address). ``task_status.started`` reports the address once every worker is ready.

    Raises:
        WorkersFailed: a worker exited before it was ready during the first start (its log says why).
    """
    shutdown = shutdown if shutdown is not None else trio.Event()
    host, port = _split_bind(settings.bind)
    shared = _bind(host, port)
    run_dir = Path(tempfile.mkdtemp(prefix="runner-"))
    metrics_dir = _metrics_dir(run_dir)
    (run_dir / "caps").mkdir()
    ConnectionBalance.create(connection_table(run_dir), workers)
    bound = shared.getsockname()[1]
    address = f"[{host}]:{bound}" if ":" in host else f"{host}:{bound}"
    url = f"http://{address}"
    env = {**os.environ, "RUNNER_BIND": address, METRICS_ENV: str(metrics_dir)}
    supervisor = _Supervisor(workers, run_dir, env, metrics_dir, settings.drain_timeout_s + STOP_MARGIN_S,
                             shared.fileno())
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch_signals, shutdown)
            try:
                await supervisor.start_all(nursery, shutdown)
            except WorkersFailed:
                shutdown.set()
                await supervisor.stop_all()
                raise
            pids = ", ".join(str(w.process.pid) for w in supervisor.workers if w.process is not None)
            log.info("runner listening on %s (%d workers, pids %s)", url, workers, pids)
            task_status.started([url])
            await shutdown.wait()
            log.info("runner: draining %d workers", workers)
            shared.close()  # the socket closes when the last draining worker lets go of it
            await supervisor.stop_all()
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        _raise_failed(group)
    finally:
        shared.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    log.info("runner stopped")


class _Supervisor:
    def __init__(self, count: int, run_dir: Path, env: dict[str, str], metrics_dir: Path, stop_timeout: float,
                 listen_fd: int):
        self.workers = [_Worker(i) for i in range(1, count + 1)]
        self._listen_fd = listen_fd
        self._count = count
        self._run_dir = run_dir
        self._env = env
        self._metrics_dir = metrics_dir
        self._stop_timeout = stop_timeout
        self._stopping = False

    async def start_all(self, nursery: trio.Nursery, shutdown: trio.Event) -> None:
        try:
            async with trio.open_nursery() as starting:
                for worker in self.workers:
                    starting.start_soon(self._first_start, worker)
        except BaseExceptionGroup as group:
            _raise_failed(group)
        for worker in self.workers:
            nursery.start_soon(self._keep, worker, shutdown)

    async def _first_start(self, worker: _Worker) -> None:
        if not await self._spawn(worker):
            raise WorkersFailed(f"worker {worker.index} exited before it was ready")

    async def _spawn(self, worker: _Worker) -> bool:
        """Start ``worker`` and wait until it is ready (True) or has exited (False)."""
        read_fd, write_fd = os.pipe()
        try:
            command = [
                sys.executable, "-m", "runner_trio", "--worker", str(worker.index), "--workers", str(self._count),
                "--run-dir", str(self._run_dir), "--listen-fd", str(self._listen_fd), "--ready-fd", str(write_fd),
            ]
            worker.process = await trio.lowlevel.open_process(
                command, env=self._env, stdin=subprocess.DEVNULL, pass_fds=(write_fd, self._listen_fd)
            )
        finally:
            os.close(write_fd)
        worker.ready = False
        async with trio.lowlevel.FdStream(read_fd) as pipe:
            received = b""
            while len(received) < len(READY):
                chunk = await pipe.receive_some(len(READY))
                if not chunk:
                    break
                received += chunk
        worker.ready = received == READY
        if not worker.ready:
            await worker.process.wait()
            log.error("runner worker %d (pid %d) exited before it was ready (status %s)",
                      worker.index, worker.process.pid, worker.process.returncode)
            self._forget(worker)
        return worker.ready

    async def _keep(self, worker: _Worker, shutdown: trio.Event) -> None:
        """Replace ``worker`` whenever it exits while the runner is serving."""
        backoff = RESTART_BACKOFF_S
        while True:
            assert worker.process is not None
            status = await worker.process.wait()
            self._forget(worker)
            if self._stopping or shutdown.is_set():
                return
            log.warning("runner worker %d (pid %d) exited with status %s: replacing it",
                        worker.index, worker.process.pid, status)
            while True:
                await trio.sleep(backoff)
                if self._stopping or shutdown.is_set():
                    return
                if await self._spawn(worker):
                    log.info("runner worker %d replaced (pid %d)", worker.index, worker.process.pid)
                    backoff = RESTART_BACKOFF_S
                    break
                backoff = min(backoff * 2, MAX_RESTART_BACKOFF_S)

    def _forget(self, worker: _Worker) -> None:
        assert worker.process is not None
        # Live gauges (in-flight invocations) of a dead worker stop counting; the others stop leaving new
        # connections for it.
        mark_process_dead(worker.process.pid, str(self._metrics_dir))  # type: ignore[no-untyped-call]
        ConnectionBalance.clear(connection_table(self._run_dir), worker.index - 1)

    async def stop_all(self) -> None:
        """SIGTERM every worker (each drains), wait for all to exit; SIGKILL what outlives the stop timeout."""
        self._stopping = True
        live = [w.process for w in self.workers if w.process is not None and w.process.returncode is None]
        for process in live:
            process.send_signal(signal.SIGTERM)
        with trio.move_on_after(self._stop_timeout):
            for process in live:
                await process.wait()
        for process in live:
            if process.returncode is None:
                log.warning("runner worker pid %d did not drain in time: killing it", process.pid)
                process.kill()
                await process.wait()


def _raise_failed(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise the first ``WorkersFailed`` of ``group`` alone (callers meet no exception group), else ``group``."""
    failed, _rest = group.split(WorkersFailed)
    if failed is None:
        raise group
    first: BaseException = failed.exceptions[0]
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    raise first from None


async def _watch_signals(shutdown: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
        async for signum in received:
            log.info("received %s: draining", signal.Signals(signum).name)
            shutdown.set()
            return


def _split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host.strip("[]"), int(port)


def _bind(host: str, port: int) -> socket.socket:
    """The runner's socket, bound and not listening yet: the first worker to finish starting makes it listen
    (a connection before that is refused, as with one process), every worker accepts from it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def _metrics_dir(run_dir: Path) -> Path:
    """``PROMETHEUS_MULTIPROC_DIR`` if the operator set one (emptied of an earlier run's files), else one in
    the run directory: the workers' metric files, read together by every worker's ``/metrics``."""
    configured = os.environ.get(METRICS_ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        return path
    path = run_dir / "metrics"
    path.mkdir()
    return path
