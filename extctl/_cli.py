"""Argument parsing, the command registry and the exit-code contract."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Final

from bundles import BundleError

from ._commands import ADMIN_TOKEN_ENV, COMMANDS, DEFAULT_GATEWAY, GATEWAY_ENV, TOKEN_ENV
from ._errors import ExtctlError, UsageError

__all__ = ["EXIT_OK", "EXIT_REJECTED", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK: Final = 0
EXIT_REJECTED: Final = 1
EXIT_USAGE: Final = 2


def _version() -> str:
    try:
        return metadata.version("ext-runtime")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subcommand per registered :class:`~extctl._commands.Command`."""
    parser = argparse.ArgumentParser(
        prog="extctl",
        description="Build, sign, verify and publish extension bundles; register, install, configure and call "
        "them through the gateway.",
        epilog="Exit codes: 0 ok, 1 rejected ('<code>: <reason>' on stderr), 2 usage error. Gateway commands take "
        f"--gateway (default ${GATEWAY_ENV}, else {DEFAULT_GATEWAY}), --admin-token (default ${ADMIN_TOKEN_ENV}) "
        f"and, for invoke, --token (default ${TOKEN_ENV}).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command_parser = sub.add_parser(command.name, help=command.help, description=command.help)
        command.configure(command_parser)
        command_parser.set_defaults(run=command.run)
    return parser


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run extctl; return the exit code (argparse itself exits with 2 on a malformed command line)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
        return code
    except UsageError as exc:
        print(f"{exc.code}: {_one_line(exc.message)}", file=sys.stderr)
        return EXIT_USAGE
    except (BundleError, ExtctlError) as exc:
        print(f"{exc.code}: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_REJECTED
    except OSError as exc:
        print(f"io_error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_REJECTED
    except KeyboardInterrupt:
        return 130
