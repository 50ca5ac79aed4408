"""``extctl usage [--tenant T] --from WHEN [--to WHEN] [--extension EXT] [--granularity minute|hour|day]``."""

from __future__ import annotations

import argparse

from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    parser.add_argument("--tenant", metavar="T", help="the tenant (required with the admin token; a tenant admin's "
                        "token reads its own tenant)")
    parser.add_argument("--from", dest="start", required=True, metavar="WHEN",
                        help="start, RFC 3339 with an offset (2026-12-06T10:00:00Z) or YYYY-MM-DD (inclusive)")
    parser.add_argument("--to", dest="end", metavar="WHEN", help="end, exclusive (default: now)")
    parser.add_argument("--extension", metavar="EXTENSION_ID", help="only this extension")
    parser.add_argument("--granularity", choices=("minute", "hour", "day"), default="hour",
                        help="bucket of the series (default: hour)")


def _run(args: argparse.Namespace) -> int:
    params = {"from": args.start, "granularity": args.granularity}
    for name, value in (("tenant", args.tenant), ("to", args.end), ("extension", args.extension)):
        if value is not None:
            params[name] = value
    with open_client(args) as client:
        print_json(client.call("GET", "/api/v1/usage", params=params))
    return 0


COMMAND = Command(name="usage", help="a tenant's usage over a time range, totals and series (admin; for billing)",
                  configure=_configure, run=_run)
