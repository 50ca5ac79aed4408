"""``extctl uninstall --tenant T EXTENSION_ID``: remove a tenant's install (its config and secrets go with it)."""

from __future__ import annotations

import argparse

from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json, segment

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    parser.add_argument("--tenant", required=True, metavar="T", help="the tenant the install belongs to")
    parser.add_argument("extension_id", metavar="EXTENSION_ID", help="the installed extension")


def _run(args: argparse.Namespace) -> int:
    path = f"/api/v1/tenants/{segment(args.tenant)}/installs/{segment(args.extension_id)}"
    with open_client(args) as client:
        client.call("DELETE", path)  # 204: nothing to show but what was removed
    print_json({"tenant_id": args.tenant, "extension_id": args.extension_id, "uninstalled": True})
    return 0


COMMAND = Command(name="uninstall", help="uninstall an extension from a tenant (admin)", configure=_configure,
                  run=_run)
