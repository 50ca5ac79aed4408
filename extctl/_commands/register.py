"""``extctl register CONTENT_HASH [--extension-id ID]``: register a published bundle with the gateway."""

from __future__ import annotations

import argparse

from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    parser.add_argument("content_hash", metavar="CONTENT_HASH", help="sha256:<hex> printed by pack/publish")
    parser.add_argument("--extension-id", metavar="ID", help="the extension's id (default: chosen by the gateway)")


def _run(args: argparse.Namespace) -> int:
    body = {"content_hash": args.content_hash}
    if args.extension_id is not None:
        body["extension_id"] = args.extension_id
    with open_client(args) as client:
        print_json(client.call("POST", "/api/v1/extensions", body))
    return 0


COMMAND = Command(
    name="register", help="register a published bundle with the gateway (admin)", configure=_configure, run=_run
)
