"""``python -m gateway_quart``: serve the gateway configured from the environment until SIGINT/SIGTERM."""

from __future__ import annotations

import sys

import trio

import bundles
from servicekit import configure_logging

from ._app import serve
from ._errors import GatewayError, SettingsError
from ._settings import Settings


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"gateway: invalid setting {exc.message}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format)
    try:
        trio.run(serve, settings)
    except (GatewayError, bundles.BundleError) as exc:
        print(f"gateway: cannot start: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
