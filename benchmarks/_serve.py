"""Serve one service in this process and write its URL to a file: ``python -m benchmarks._serve KIND URL_FILE``.

KIND is ``runner`` (``runner_trio.serve_workers`` with ``Settings.from_env()``: exactly what
``python -m runner_trio`` runs, ``RUNNER_WORKERS`` processes), ``gateway`` (``gateway_quart.serve``: what
``python -m gateway_quart`` runs, drain gate and access log included) or ``bare`` (a Quart-trio app whose ``POST
/v1/execute`` parses the JSON request and answers an envelope of the same shape as the runner's, on the Hypercorn
config of ``runner_trio.serve``): the reference side of the HTTP benchmark. With ``BENCH_BARE_PROCESSES=N`` (N > 1)
the bare app runs as N processes behind one port the way a runner's workers do (``runner_trio._workers``): this
process binds the socket and starts N children that serve it with ``servicekit.serve_app`` (as the runner's
workers do), each taking a new connection only when it holds the fewest (``servicekit.ConnectionBalance``).

Every service binds ``127.0.0.1:0``; the bound URL is written (atomically) to URL_FILE once it listens.
SIGTERM or SIGINT stops it. With ``BENCH_PROFILE=PREFIX`` in the environment the service runs under cProfile
and writes ``PREFIX.KIND.prof`` when it stops (for finding where a benchmark's time goes; never timed).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from quart import Response, request
from quart_trio import QuartTrio

from servicekit import ConnectionBalance, serve_app


def _write_url(path: Path, binds: list[str]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(binds[0])  # every service binds 127.0.0.1
    tmp.replace(path)


async def _until_signalled() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


def bare_app() -> QuartTrio:
    """The reference endpoint: JSON in, an envelope like ``/v1/execute``'s out, nothing in between."""
    app = QuartTrio("bench_bare")

    @app.post("/v1/execute")
    async def execute() -> Response:
        doc: Any = json.loads(await request.get_data(cache=False))
        http = doc["http"]
        envelope = {
            "status": 200,
            "headers": {"x-method": http["method"], "x-url": http["path"], "x-tenant": doc["context"]["tenant_id"],
                        **http.get("headers", {})},
            "body_b64": http.get("body_b64"),
            "error": None,
        }
        return Response(json.dumps(envelope), status=200, content_type="application/json",
                        headers={"x-request-id": request.headers.get("x-request-id", "bench")})

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response('{"status": "ok"}', content_type="application/json")

    return app


async def _serve_runner(url_file: Path) -> None:
    from runner_trio import Settings, serve_workers

    settings = Settings.from_env()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(lambda task_status: serve_workers(settings, task_status=task_status))
        _write_url(url_file, binds)


async def _serve_gateway(url_file: Path) -> None:
    # What `python -m gateway_quart` runs (servicekit.serve_app: its Hypercorn config, drain gate, access log).
    from gateway_quart import load_settings, serve

    settings = load_settings(os.environ)
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(lambda task_status: serve(settings, task_status=task_status))
        _write_url(url_file, binds)


async def _serve_bare_processes(count: int, url_file: Path) -> None:
    """``count`` bare-app children on one socket shared like the runner's workers; stop them on a signal."""
    # As runner_trio's supervisor does: one bound socket for all, and their connection table.
    shared = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    shared.bind(("127.0.0.1", 0))
    shared.set_inheritable(True)
    bind = f"127.0.0.1:{shared.getsockname()[1]}"
    table = url_file.with_name(f"{url_file.name}.connections")
    ConnectionBalance.create(table, count)
    children: list[trio.Process] = []
    try:
        for i in range(count):
            child_url = url_file.with_name(f"{url_file.name}.{i}")
            env = {**os.environ, "BENCH_BARE_FD": str(shared.fileno()), "BENCH_BARE_TABLE": str(table),
                   "BENCH_BARE_SLOT": str(i)}
            env.pop("BENCH_BARE_PROCESSES", None)
            children.append(await trio.lowlevel.open_process(
                [sys.executable, "-m", "benchmarks._serve", "bare", str(child_url)], env=env,
                stdin=subprocess.DEVNULL, pass_fds=(shared.fileno(),),
            ))
            while not child_url.exists():
                if children[-1].returncode is not None:
                    raise RuntimeError(f"bare child {i} exited with {children[-1].returncode}")
                await trio.sleep(0.02)
        _write_url(url_file, [f"http://{bind}"])
        await _until_signalled()
    finally:
        for child in children:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            await child.wait()
        shared.close()


async def _serve_balanced(fd: int, table: Path, slot: int, url_file: Path) -> None:
    """One child of :func:`_serve_bare_processes`: the bare app served as a runner's worker serves its app."""
    from runner_trio import Settings

    balance = ConnectionBalance(table, slot)
    try:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(
                serve_app, bare_app(), bind=f"fd://{fd}", drain_timeout=Settings().drain_timeout_s, name="bare",
                balance=balance, announce=False,
            ))
            _write_url(url_file, binds)
    finally:
        balance.close()


async def _serve_app(app: Any, config: Config, url_file: Path) -> None:
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            lambda task_status: hypercorn_serve(app, config, shutdown_trigger=_until_signalled,
                                                task_status=task_status)
        )
        _write_url(url_file, binds)


def main() -> int:
    profile_prefix = os.environ.get("BENCH_PROFILE")
    if not profile_prefix:
        return _main()
    import cProfile

    profiler = cProfile.Profile()
    try:
        return profiler.runcall(_main)
    finally:
        profiler.dump_stats(f"{profile_prefix}.{sys.argv[1]}.prof")


def _main() -> int:
    kind, url_file = sys.argv[1], Path(sys.argv[2])
    # The logging `python -m runner_trio` and `python -m gateway_quart` set up.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = Config()
    config.bind = ["127.0.0.1:0"]
    if kind == "runner":
        trio.run(_serve_runner, url_file)
    elif kind == "gateway":
        trio.run(_serve_gateway, url_file)
    elif kind == "bare" and int(os.environ.get("BENCH_BARE_PROCESSES", "1")) > 1:
        trio.run(_serve_bare_processes, int(os.environ["BENCH_BARE_PROCESSES"]), url_file)
    elif kind == "bare":
        from runner_trio import Settings

        # The Hypercorn configuration runner_trio.serve() builds.
        config.graceful_timeout = float(Settings().drain_timeout_s)
        config.accesslog = None
        if "BENCH_BARE_FD" in os.environ:  # one of several processes on one port (see the module's docstring)
            trio.run(_serve_balanced, int(os.environ["BENCH_BARE_FD"]), Path(os.environ["BENCH_BARE_TABLE"]),
                     int(os.environ["BENCH_BARE_SLOT"]), url_file)
        else:
            trio.run(_serve_app, bare_app(), config, url_file)
    else:
        print(f"unknown service kind {kind!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
