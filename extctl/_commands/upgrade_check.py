"""``extctl upgrade-check EXTENSION_ID --to sha256:… [--last N] [--tenant T] [--json]`` (admin).

Replays the last N recorded invocations of the installed version against the bundle ``--to`` and prints a table:
per entry ``identical`` / ``response_differs`` / ``calls_differ`` / ``new_failure`` (with the call where it
diverged and the link to the entry), then the counts. The gateway stores the result: a tenant that requires a
passing check before upgrades (``require_upgrade_check``) can then upgrade for 24 hours. Exit code 0 when the
check passed, 1 when it did not (``upgrade_check_failed`` on stderr).
"""

from __future__ import annotations

import argparse
import sys

from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json, segment
from ._journal_view import format_upgrade_check
from .journal import add_tenant_argument, tenant_of

__all__ = ["COMMAND"]

DEFAULT_LAST = 20


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    add_tenant_argument(parser)
    parser.add_argument("extension_id", metavar="EXTENSION_ID", help="the installed extension")
    parser.add_argument("--to", required=True, metavar="sha256:HEX", help="the registered version to check")
    parser.add_argument("--last", type=int, default=DEFAULT_LAST, metavar="N",
                        help=f"replay the last N recorded invocations (default {DEFAULT_LAST}, at most 100)")
    parser.add_argument("--json", action="store_true", help="print the gateway's JSON answer")


def _run(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        tenant = segment(tenant_of(args, client))
        check = client.call("POST", f"/api/v1/tenants/{tenant}/installs/{segment(args.extension_id)}/upgrade-check",
                            {"to": args.to, "last": args.last})
    if args.json:
        print_json(check)
    else:
        print(format_upgrade_check(check))
    if not check.get("passed"):
        print("upgrade_check_failed: the new version does not replay the recorded invocations cleanly",
              file=sys.stderr)
        return 1
    return 0


COMMAND = Command(name="upgrade-check", help="replay recorded invocations against a new version (admin)",
                  configure=_configure, run=_run)
