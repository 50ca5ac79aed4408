"""``extctl create-tenant NAME [--id ID]``: a new tenant (gateway admin token only).

The id is NAME's slug (``"Acme Corp"`` -> ``acme-corp``) unless ``--id`` says otherwise, so the name an author
typed is the one ``--tenant`` takes next; ``--generated-id`` lets the gateway pick one (a UUID).
"""

from __future__ import annotations

import argparse
import re
from typing import Final

from contract import SAFE_ID_PATTERN

from .._errors import UsageError
from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json

__all__ = ["COMMAND", "tenant_slug"]

_NOT_SLUG: Final = re.compile(r"[^a-z0-9]+")
_MAX_SLUG: Final = 63  # one DNS label: per-install UI origins put the tenant id in a host name


def tenant_slug(name: str) -> str:
    """``name`` lower-cased, each run of other characters one hyphen, trimmed: ``"Acme Corp."`` -> ``acme-corp``.

    Raises:
        UsageError: nothing of ``name`` is left (pass ``--id``).
    """
    slug = _NOT_SLUG.sub("-", name.lower())[:_MAX_SLUG].strip("-")
    if not slug or not SAFE_ID_PATTERN.fullmatch(slug):
        raise UsageError(f"cannot make an id of {name!r}: pass --id")
    return slug


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    parser.add_argument("name", metavar="NAME", help="display name")
    ids = parser.add_mutually_exclusive_group()
    ids.add_argument("--id", metavar="ID", help="the tenant id (default: NAME's slug, e.g. 'Acme Corp' -> acme-corp)")
    ids.add_argument("--generated-id", action="store_true", help="let the gateway generate the id (a UUID)")


def _run(args: argparse.Namespace) -> int:
    body = {"name": args.name}
    if not args.generated_id:
        body["id"] = args.id if args.id is not None else tenant_slug(args.name)
    with open_client(args) as client:
        print_json(client.call("POST", "/api/v1/tenants", body))
    return 0


COMMAND = Command(name="create-tenant", help="create a tenant (admin)", configure=_configure, run=_run)
