"""``extctl create-user --tenant T --role member|viewer|admin [--role …] EMAIL [--name N]``."""

from __future__ import annotations

import argparse
from typing import Any, Final

from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json, segment

__all__ = ["COMMAND"]

ROLES: Final = ("viewer", "member", "admin")
USER_TYPES: Final = ("internal", "client")


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    parser.add_argument("--tenant", required=True, metavar="T", help="the user's tenant")
    parser.add_argument(
        "--role", required=True, action="append", choices=ROLES, help="viewer (read), member (read/write) or "
        "admin (read/write/administer the tenant); repeatable",
    )
    parser.add_argument("email", metavar="EMAIL", help="the user's email (unique in the tenant)")
    parser.add_argument("--name", help="display name (default: the email)")
    parser.add_argument("--user-type", choices=USER_TYPES, help="internal (default) or client")


def _run(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"email": args.email, "roles": sorted(set(args.role))}
    if args.name is not None:
        body["name"] = args.name
    if args.user_type is not None:
        body["user_type"] = args.user_type
    with open_client(args) as client:
        print_json(client.call("POST", f"/api/v1/tenants/{segment(args.tenant)}/users", body))
    return 0


COMMAND = Command(name="create-user", help="create a user of a tenant (admin)", configure=_configure, run=_run)
