"""``python -m gateway_quart``: serve the gateway configured from the environment until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import sys

import trio

import bundles

from ._app import serve
from ._errors import GatewayError, SettingsError
from ._settings import Settings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"gateway: invalid setting {exc.message}", file=sys.stderr)
        return 2
    try:
        trio.run(serve, settings)
    except (GatewayError, bundles.BundleError) as exc:
        print(f"gateway: cannot start: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
