"""``python -m runner_trio``: serve the runner configured from the environment."""

from __future__ import annotations

import sys

import trio

from servicekit import configure_logging

from ._app import serve
from ._config import Settings
from ._errors import ConfigError


def main() -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"runner: invalid configuration: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format)
    try:
        trio.run(serve, settings)
    except ConfigError as exc:
        print(f"runner: invalid configuration: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
