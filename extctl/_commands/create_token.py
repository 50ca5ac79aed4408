"""``extctl create-token USER_ID [--name N] [--expires-in SECONDS] [--json]``: mint an API token.

Prints only the ``agt_…`` token (so ``TOKEN=$(extctl create-token …)`` works); ``--json`` prints the whole
record, with the token id needed to revoke it. The gateway shows the token once and keeps its hash.
"""

from __future__ import annotations

import argparse
from typing import Any

from .._errors import CommandFailed
from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json, segment

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    parser.add_argument("user_id", metavar="USER_ID", help="the user the token acts as")
    parser.add_argument("--name", help="a label for the token (default: api)")
    parser.add_argument("--expires-in", type=int, metavar="SECONDS", help="lifetime (default: no expiry)")
    parser.add_argument("--json", action="store_true", help="print the whole token record as JSON")


def _run(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.name is not None:
        body["name"] = args.name
    if args.expires_in is not None:
        body["expires_in_s"] = args.expires_in
    with open_client(args) as client:
        record = client.call("POST", f"/api/v1/users/{segment(args.user_id)}/tokens", body)
    token = record.get("token") if isinstance(record, dict) else None
    if not isinstance(token, str):
        raise CommandFailed("the gateway answered without a token", code="bad_response")
    if args.json:
        print_json(record)
    else:
        print(token)
    return 0


COMMAND = Command(name="create-token", help="mint an API token for a user (admin)", configure=_configure, run=_run)
