"""``extctl upgrade EXTENSION_ID --version V|--hash sha256:… [--tenant T]``: move an install to another version.

An upgrade asking for nothing new (capabilities, egress hosts, secrets) happens at once; one asking for more is
held (``"status": "pending_consent"`` with the diff) and the install keeps its version until a tenant admin runs
``extctl consent``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json, segment
from ._versions import add_reason_argument, add_tenant_argument, tenant_of, version_field

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    add_tenant_argument(parser)
    parser.add_argument("extension_id", metavar="EXTENSION_ID", help="the installed extension")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--version", metavar="V", help="a version string (1.2.0), sha256:<hex> or version id")
    target.add_argument("--hash", metavar="sha256:HEX", help="the bundle's content hash")
    add_reason_argument(parser)


def _run(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"content_hash": args.hash} if args.hash else version_field(args.version)
    if args.reason:
        body["reason"] = args.reason
    with open_client(args) as client:
        tenant = tenant_of(client, args)
        answer = client.call("POST", f"/api/v1/tenants/{segment(tenant)}/installs/{segment(args.extension_id)}/upgrade",
                             body)
    print_json(answer)
    if isinstance(answer, dict) and answer.get("status") == "pending_consent":
        print(f"pending_consent: the upgrade asks for more; a tenant admin approves it with "
              f"`extctl consent {args.extension_id} --tenant {tenant}`", file=sys.stderr)
    return 0


COMMAND = Command(name="upgrade", help="upgrade an install to another version (held for consent if it asks for more)",
                  configure=_configure, run=_run)
