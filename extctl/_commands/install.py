"""``extctl install --tenant T EXTENSION_ID [--version V|HASH|ID] [--grant CAP …] [--config K=V …]``."""

from __future__ import annotations

import argparse
from typing import Any

from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json, segment
from ._inputs import parse_pairs
from ._versions import version_field

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    parser.add_argument("--tenant", required=True, metavar="T", help="the tenant to install for")
    parser.add_argument("extension_id", metavar="EXTENSION_ID", help="a registered extension")
    parser.add_argument(
        "--version", metavar="V",
        help="a version string (1.2.0), sha256:<hex> content hash or version id (default: the newest)"
    )
    parser.add_argument(
        "--grant", action="append", default=[], metavar="CAP",
        help="grant a capability the manifest requests, e.g. cap:http.fetch; repeatable",
    )
    parser.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="config entry; repeatable")
    parser.add_argument("--disabled", action="store_true", help="install without enabling it")


def _run(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "extension_id": args.extension_id,
        "granted_capabilities": list(args.grant),
        "config": parse_pairs(args.config, "--config"),
    }
    if args.version is not None:
        body.update(version_field(args.version))
    if args.disabled:
        body["enabled"] = False
    with open_client(args) as client:
        print_json(client.call("POST", f"/api/v1/tenants/{segment(args.tenant)}/installs", body))
    return 0


COMMAND = Command(name="install", help="install an extension for a tenant (admin)", configure=_configure, run=_run)
