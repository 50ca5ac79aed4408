"""``extctl budgets --tenant T [--set NAME/PERIOD=LIMIT …] [--clear]``: show or replace a tenant's budgets."""

from __future__ import annotations

import argparse
import re
from typing import Final

from .._errors import UsageError
from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json, segment

__all__ = ["COMMAND"]

_SPEC: Final = re.compile(r"([a-z_]+)/(minute|hour|day)=(\d{1,16})")


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    parser.add_argument("--tenant", required=True, metavar="T", help="the tenant")
    parser.add_argument("--set", action="append", default=[], metavar="NAME/PERIOD=LIMIT",
                        help="a budget, e.g. invocations/minute=600 or egress_bytes/day=5000000000; repeatable; "
                        "replaces all the tenant's budgets (admin token)")
    parser.add_argument("--clear", action="store_true", help="remove all the tenant's budgets (admin token)")


def _run(args: argparse.Namespace) -> int:
    path = f"/api/v1/tenants/{segment(args.tenant)}/budgets"
    budgets = []
    for spec in args.set:
        found = _SPEC.fullmatch(spec.strip())
        if found is None:
            raise UsageError(f"--set {spec!r}: expected NAME/PERIOD=LIMIT, e.g. invocations/minute=600")
        budgets.append({"name": found[1], "period": found[2], "limit": int(found[3])})
    if args.clear and budgets:
        raise UsageError("--clear and --set exclude each other")
    with open_client(args) as client:
        if budgets or args.clear:
            print_json(client.call("PUT", path, {"budgets": budgets}))
        else:
            print_json(client.call("GET", path))
    return 0


COMMAND = Command(name="budgets", help="show or replace a tenant's budgets (429 quota_exceeded beyond them)",
                  configure=_configure, run=_run)
