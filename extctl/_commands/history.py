"""``extctl history EXTENSION_ID [--tenant T] [--limit N]``: an install's version changes, newest first."""

from __future__ import annotations

import argparse

from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json, segment
from ._versions import add_tenant_argument, tenant_of

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    add_tenant_argument(parser)
    parser.add_argument("extension_id", metavar="EXTENSION_ID", help="the installed extension")
    parser.add_argument("--limit", type=int, default=100, metavar="N", help="at most N entries (default: 100)")


def _run(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        tenant = tenant_of(client, args)
        print_json(client.call(
            "GET", f"/api/v1/tenants/{segment(tenant)}/installs/{segment(args.extension_id)}/history"
                   f"?limit={int(args.limit)}"))
    return 0


COMMAND = Command(name="history", help="list an install's version changes (install, upgrade, consent, rollback…)",
                  configure=_configure, run=_run)
