"""``extctl rollback EXTENSION_ID [--tenant T]``: restore the version the install ran before, in one call."""

from __future__ import annotations

import argparse
from typing import Any

from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json, segment
from ._versions import add_reason_argument, add_tenant_argument, tenant_of

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    add_tenant_argument(parser)
    parser.add_argument("extension_id", metavar="EXTENSION_ID", help="the installed extension")
    add_reason_argument(parser)


def _run(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"reason": args.reason} if args.reason else {}
    with open_client(args) as client:
        tenant = tenant_of(client, args)
        print_json(client.call(
            "POST", f"/api/v1/tenants/{segment(tenant)}/installs/{segment(args.extension_id)}/rollback", body))
    return 0


COMMAND = Command(name="rollback", help="restore an install's previous version (withdraws a pending upgrade)",
                  configure=_configure, run=_run)
