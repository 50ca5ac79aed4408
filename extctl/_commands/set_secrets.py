"""``extctl set-secrets --tenant T EXTENSION_ID (--json … | --file F) [--expires-at RFC3339]``.

Replaces the install's secrets. The gateway seals them to the runner's key on arrival and answers with the
key names only; prefer ``--file -`` (stdin) so values never appear in the process list or shell history.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json, segment
from ._inputs import add_map_arguments, parse_timestamp, read_string_map

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    parser.add_argument("--tenant", required=True, metavar="T", help="the tenant the install belongs to")
    parser.add_argument("extension_id", metavar="EXTENSION_ID", help="the installed extension")
    parser.add_argument("--expires-at", metavar="RFC3339", help="the sealed secrets stop opening after this time")
    add_map_arguments(parser, "secrets")


def _run(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"secrets": read_string_map(args)}
    if args.expires_at is not None:
        parse_timestamp(args.expires_at, "--expires-at")  # refuse a typo before anything is sent
        body["expires_at"] = args.expires_at
    path = f"/api/v1/tenants/{segment(args.tenant)}/installs/{segment(args.extension_id)}/secrets"
    with open_client(args) as client:
        answer = client.call("PUT", path, body)
    del body
    print_json(answer)
    return 0


COMMAND = Command(
    name="set-secrets", help="replace an install's secrets (sealed by the gateway; admin)", configure=_configure,
    run=_run,
)
