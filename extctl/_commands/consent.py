"""``extctl consent EXTENSION_ID [--tenant T] [--version V]``: approve the upgrade waiting for consent.

``--version`` names what you reviewed (``extctl diff``); when another upgrade replaced it meanwhile the gateway
refuses (``pending_changed``) instead of approving something else.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json, segment
from ._versions import add_reason_argument, add_tenant_argument, tenant_of, version_field

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    add_tenant_argument(parser)
    parser.add_argument("extension_id", metavar="EXTENSION_ID", help="the installed extension")
    parser.add_argument("--version", metavar="V", help="the pending version you approve (refused if another)")
    add_reason_argument(parser)


def _run(args: argparse.Namespace) -> int:
    body: dict[str, Any] = version_field(args.version) if args.version else {}
    if args.reason:
        body["reason"] = args.reason
    with open_client(args) as client:
        tenant = tenant_of(client, args)
        print_json(client.call(
            "POST", f"/api/v1/tenants/{segment(tenant)}/installs/{segment(args.extension_id)}/consent", body))
    return 0


COMMAND = Command(name="consent", help="approve the upgrade waiting for a tenant admin's consent",
                  configure=_configure, run=_run)
