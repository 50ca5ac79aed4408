"""``extctl replay ENTRY [--bundle sha256:…] [--tenant T] [--json]``: run a recorded invocation again (admin).

A runner replays it from the journal (host calls answered in order, clocks and randomness as recorded, nothing
real touched) against the bundle that recorded it, or ``--bundle``, and reports ``identical`` or the first
divergence and the response diff. Exit code 0 for ``identical``, 1 otherwise (``replay_differs`` on stderr).
"""

from __future__ import annotations

import argparse
import sys

from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json, segment
from ._journal_view import format_replay
from .journal import add_tenant_argument, tenant_of

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    add_tenant_argument(parser)
    parser.add_argument("entry_id", metavar="ENTRY", help="the journal entry to replay")
    parser.add_argument("--bundle", metavar="sha256:HEX", help="replay against this registered version instead")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _run(args: argparse.Namespace) -> int:
    body = {"content_hash": args.bundle} if args.bundle else {}
    with open_client(args) as client:
        tenant = segment(tenant_of(args, client))
        report = client.call("POST", f"/api/v1/tenants/{tenant}/journal/{segment(args.entry_id)}/replay", body)
    if args.json:
        print_json(report)
    else:
        print(format_replay(report))
    if report.get("verdict") != "identical":
        print(f"replay_differs: {report.get('verdict')}", file=sys.stderr)
        return 1
    return 0


COMMAND = Command(name="replay", help="replay a recorded invocation on a runner and report the differences (admin)",
                  configure=_configure, run=_run)
