"""``extctl journal policy|list|show``: a tenant's invocation journal through the gateway (admin).

- ``journal policy EXTENSION_ID POLICY``: which invocations the runners record (off, errors, all, sample:<rate>).
- ``journal list [--extension E] [--outcome O] [--limit N] [--json]``: recorded invocations, newest first.
- ``journal show ENTRY [--out FILE]``: the entry document (``alga-journal/1``, JSON; secret values never in it).
- ``journal keygen [--id KID]``: a new journal key in the setting form of ``RUNNER_JOURNAL_KEYS`` and
  ``GATEWAY_JOURNAL_KEYS`` (``kid:<base64 of 32 bytes>``; put it first to rotate, keep the old one after it).

The tenant is ``--tenant``, else the token's own (``/api/v1/me``).
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
from pathlib import Path

import journal

from .._errors import CommandFailed, UsageError
from ._base import Command, write_atomic
from ._gateway import GatewayClient, add_gateway_arguments, open_client, print_json, segment
from ._journal_view import format_entries

__all__ = ["COMMAND", "add_tenant_argument", "tenant_of"]


def add_tenant_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", metavar="T", help="the tenant (default: the token's own)")


def tenant_of(args: argparse.Namespace, client: GatewayClient) -> str:
    """``--tenant``, else the tenant of the credential (a tenant admin's token)."""
    if args.tenant:
        return str(args.tenant)
    try:
        me = client.call("GET", "/api/v1/me")
    except CommandFailed:
        raise UsageError("pass --tenant T (the credential names no tenant of its own)") from None
    if not isinstance(me, dict) or not isinstance(me.get("tenant_id"), str):
        raise UsageError("pass --tenant T (the credential names no tenant of its own)")
    return str(me["tenant_id"])


def _configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="journal_action", metavar="ACTION", required=True)
    policy = sub.add_parser("policy", help="set an install's journal policy", description="set an install's "
                            "journal policy: off, errors (the default), all, or sample:<rate> (0 < rate <= 1)")
    policy.add_argument("extension_id", metavar="EXTENSION_ID", help="the installed extension")
    policy.add_argument("policy", metavar="POLICY", help="off | errors | all | sample:<rate>")
    listing = sub.add_parser("list", help="list recorded invocations, newest first")
    listing.add_argument("--extension", metavar="E", help="only this extension")
    listing.add_argument("--outcome", metavar="O", help="only this outcome (ok, timeout, trap, …)")
    listing.add_argument("--limit", type=int, default=100, metavar="N", help="at most N entries (default 100)")
    listing.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
    show = sub.add_parser("show", help="print one recorded invocation (JSON)")
    show.add_argument("entry_id", metavar="ENTRY", help="the entry id")
    show.add_argument("--out", type=Path, metavar="FILE", help="write it to FILE instead of stdout")
    for action in (policy, listing, show):
        add_gateway_arguments(action)
        add_tenant_argument(action)
    keygen = sub.add_parser("keygen", help="print a new journal key (RUNNER_JOURNAL_KEYS / GATEWAY_JOURNAL_KEYS)")
    keygen.add_argument("--id", dest="key_id", metavar="KID", help="the key id (default: k<8 random hex>)")


def _run(args: argparse.Namespace) -> int:
    if args.journal_action == "keygen":
        try:
            key = journal.JournalKeyring.generate(args.key_id)
            journal.JournalKeyring.parse(key)  # the id must be one the settings accept
        except journal.JournalError as exc:
            raise UsageError(f"--id: {exc}") from None
        print(key)
        return 0
    with open_client(args) as client:
        tenant = segment(tenant_of(args, client))
        if args.journal_action == "policy":
            path = f"/api/v1/tenants/{tenant}/installs/{segment(args.extension_id)}/journal"
            install = client.call("PUT", path, {"policy": args.policy})
            print_json({"tenant_id": install.get("tenant_id"), "extension_id": install.get("extension_id"),
                        "journal_policy": install.get("journal_policy")})
        elif args.journal_action == "list":
            query = {"limit": str(args.limit)}
            query |= {k: v for k, v in (("extension", args.extension), ("outcome", args.outcome)) if v}
            answer = client.call("GET", f"/api/v1/tenants/{tenant}/journal?{urllib.parse.urlencode(query)}")
            if args.json:
                print_json(answer)
            else:
                print(format_entries(answer.get("entries") or []))
        else:
            doc = client.call("GET", f"/api/v1/tenants/{tenant}/journal/{segment(args.entry_id)}")
            if args.out is not None:
                write_atomic(args.out, json.dumps(doc, indent=2, ensure_ascii=False).encode() + b"\n", mode=0o600)
            else:
                print_json(doc)
    return 0


COMMAND = Command(name="journal", help="set journal policies, list and show recorded invocations (admin)",
                  configure=_configure, run=_run)
