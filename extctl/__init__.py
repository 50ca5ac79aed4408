"""extctl: the command line for extension bundles and the gateway.

Authors: ``new build dev``. Bundles: ``keygen pack sign verify publish``. Sealed secrets: ``secrets-keygen seal``.
Gateway admin API: ``register create-tenant create-user create-token install set-secrets uninstall``. Calls: ``invoke``.

Run it as ``extctl`` (console script) or ``python -m extctl``. Exit codes: 0 ok, 1 rejected (one line on
stderr starting with the error code), 2 usage error.
"""

from ._cli import EXIT_OK, EXIT_REJECTED, EXIT_USAGE, build_parser, main
from ._errors import CommandFailed, ExtctlError, UsageError

__all__ = [
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_USAGE",
    "CommandFailed",
    "ExtctlError",
    "UsageError",
    "build_parser",
    "main",
]
