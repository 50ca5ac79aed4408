"""``extctl canary start|list|status|cancel``: roll a version out to part of the traffic, watch it, stop it.

``start EXTENSION_ID --to VERSION --percent P --tenant T`` sends P% of tenant T's requests to VERSION (a version
string, ``sha256:<hex>`` or a version id); ``--tenants a,b`` sends every request of those tenants instead. The
gateway promotes the canary at the end of ``--window`` if the budget held and rolls it back as soon as it
breaks. With a tenant admin's token, ``start --as-tenant-admin`` goes through the tenant's own install route
(``--tenant`` required, ``--percent`` only). ``list EXTENSION_ID`` shows its canaries; ``status ID`` and
``cancel ID`` take the id that ``start`` (or ``list``) printed.
"""

from __future__ import annotations

import argparse
from typing import Any

from .._errors import UsageError
from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json, segment

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    start = actions.add_parser("start", help="start a canary", description="start a canary")
    add_gateway_arguments(start)
    start.add_argument("extension_id", metavar="EXTENSION_ID", help="a registered extension")
    start.add_argument("--to", required=True, metavar="VERSION",
                       help="the version on trial: a version string, sha256:<hex> or a version id")
    start.add_argument("--percent", type=float, metavar="P", help="share of the tenant's requests, 0 < P <= 100")
    start.add_argument("--tenant", metavar="T", help="the tenant whose requests are split (with --percent)")
    start.add_argument("--tenants", metavar="A,B", help="tenants whose every request goes to the new version")
    start.add_argument("--as-tenant-admin", action="store_true",
                       help="use the tenant's install route (a tenant admin's token may start its own canary)")
    start.add_argument("--window", type=int, metavar="SECONDS", help="how long it runs before promotion")
    start.add_argument("--max-error-rate", type=float, metavar="R", help="e.g. 0.05")
    start.add_argument("--max-timeout-rate", type=float, metavar="R", help="e.g. 0.05")
    start.add_argument("--max-p99-ms", type=float, metavar="MS", help="p99 latency limit (default: none)")
    start.add_argument("--min-requests", type=int, metavar="N", help="requests before rates are judged")
    listing = actions.add_parser("list", help="an extension's canaries, newest first",
                                 description="an extension's canaries, newest first")
    add_gateway_arguments(listing)
    listing.add_argument("extension_id", metavar="EXTENSION_ID", help="the extension")
    listing.add_argument("--state", choices=("running", "promoted", "rolled_back", "cancelled"))
    for name, text in (("status", "show a canary: state, reason, per-arm counts"),
                       ("cancel", "cancel a running canary (installs keep their version)")):
        action = actions.add_parser(name, help=text, description=text)
        add_gateway_arguments(action)
        action.add_argument("canary_id", metavar="ID", help="the canary's id (from start)")


def _body(args: argparse.Namespace) -> dict[str, Any]:
    if (args.percent is None) == (args.tenants is None):
        raise UsageError("give --percent (with --tenant) or --tenants")
    body: dict[str, Any] = {"to": args.to}
    if args.percent is not None:
        if args.tenant is None:
            raise UsageError("--percent needs --tenant")
        body |= {"tenant": args.tenant, "percent": args.percent}
    else:
        if args.tenant is not None or args.as_tenant_admin:
            raise UsageError("--tenants goes without --tenant and --as-tenant-admin")
        body["tenants"] = [t.strip() for t in args.tenants.split(",") if t.strip()]
    if args.window is not None:
        body["window_s"] = args.window
    budget = {key: value for key, value in (
        ("max_error_rate", args.max_error_rate), ("max_timeout_rate", args.max_timeout_rate),
        ("max_p99_ms", args.max_p99_ms), ("min_requests", args.min_requests)) if value is not None}
    if budget:
        body["budget"] = budget
    return body


def _run(args: argparse.Namespace) -> int:
    if args.action == "start":
        ext = segment(args.extension_id)
        body = _body(args)
        if args.as_tenant_admin:
            path = f"/api/v1/tenants/{segment(body.pop('tenant'))}/installs/{ext}/canary"
        else:
            path = f"/api/v1/extensions/{ext}/canaries"
        with open_client(args) as client:
            print_json(client.call("POST", path, body))
        return 0
    if args.action == "list":
        query = f"?state={args.state}" if args.state else ""
        with open_client(args) as client:
            print_json(client.call("GET", f"/api/v1/extensions/{segment(args.extension_id)}/canaries{query}"))
        return 0
    path = f"/api/v1/canaries/{segment(args.canary_id)}"
    with open_client(args) as client:
        if args.action == "status":
            print_json(client.call("GET", path))
        else:
            print_json(client.call("POST", path + "/cancel"))
    return 0


COMMAND = Command(name="canary", help="canary rollouts: start, list, status, cancel (admin)", configure=_configure,
                  run=_run)
