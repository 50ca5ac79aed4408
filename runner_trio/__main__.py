"""``python -m runner_trio``: serve the runner configured from the environment.

With ``RUNNER_WORKERS`` above 1 (the default is one worker per CPU) this process is the supervisor of that
many worker processes on the one port (``_workers.py``); with 1 it serves alone, as a single process.
``--worker I ...`` is how the supervisor starts a worker; it is not meant to be typed.
"""

from __future__ import annotations

import sys

import trio

from servicekit import configure_logging

from ._config import Settings
from ._errors import ConfigError, WorkersFailed
from ._workers import run_worker, serve_workers, worker_args


def main(argv: list[str] | None = None) -> int:
    role = worker_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"runner: invalid configuration: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format)
    try:
        if role is not None:
            trio.run(run_worker, settings, *role)
        else:
            trio.run(serve_workers, settings)
    except ConfigError as exc:
        print(f"runner: invalid configuration: {exc}", file=sys.stderr)
        return 2
    except WorkersFailed as exc:
        print(f"runner: {exc.detail}: not starting", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
