"""``extctl privileges [--tenant T] EXTENSION_ID [--days N]``: granted capabilities vs. the host calls made."""

from __future__ import annotations

import argparse

from .._errors import CommandFailed, UsageError
from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json, segment

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    parser.add_argument("--tenant", metavar="T", help="the tenant of the install (default: the token's own tenant)")
    parser.add_argument("extension_id", metavar="EXTENSION_ID", help="the installed extension")
    parser.add_argument("--days", type=int, default=30, metavar="N", help="look back N days (default: 30)")


def _run(args: argparse.Namespace) -> int:
    if not 1 <= args.days <= 366:
        raise UsageError("--days must be within 1..366")
    with open_client(args) as client:
        tenant = args.tenant
        if tenant is None:
            try:
                tenant = client.call("GET", "/api/v1/me")["tenant_id"]
            except CommandFailed:  # the admin token has no tenant of its own
                raise UsageError("--tenant is required unless the token is a tenant admin's") from None
        path = f"/api/v1/tenants/{segment(tenant)}/installs/{segment(args.extension_id)}/privileges"
        print_json(client.call("GET", path, params={"days": str(args.days)}))
    return 0


COMMAND = Command(name="privileges", help="least-privilege report: grants used and unused in the last N days "
                  "(admin)", configure=_configure, run=_run)
