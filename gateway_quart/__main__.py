"""``python -m gateway_quart``: serve the gateway with Hypercorn's trio worker until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import sys

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

import bundles

from ._app import create_app
from ._errors import GatewayError, SettingsError
from ._settings import Settings, load_settings

GRACEFUL_TIMEOUT_S = 10.0


async def _until_signalled() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def _serve(settings: Settings) -> None:
    app = create_app(settings)
    config = Config()
    config.bind = [settings.bind]
    config.graceful_timeout = GRACEFUL_TIMEOUT_S
    config.accesslog = "-"
    await serve(app, config, shutdown_trigger=_until_signalled)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        print(f"gateway: invalid setting {exc.message}", file=sys.stderr)
        return 2
    try:
        trio.run(_serve, settings)
    except (GatewayError, bundles.BundleError) as exc:
        print(f"gateway: cannot start: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
