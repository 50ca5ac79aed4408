"""``extctl diff EXTENSION_ID --from V --to V``: what one version asks for more or less than another.

Each of ``--from``/``--to`` is a version string (``1.2.0``), ``sha256:<hex>`` or a version id. The answer lists
capabilities, egress hosts and secrets added and removed, and whether an upgrade would need consent.
"""

from __future__ import annotations

import argparse
import urllib.parse

from ._base import Command
from ._gateway import add_gateway_arguments, open_client, print_json, segment

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser)
    parser.add_argument("extension_id", metavar="EXTENSION_ID", help="a registered extension")
    parser.add_argument("--from", dest="from_version", required=True, metavar="V", help="the version you run")
    parser.add_argument("--to", dest="to_version", required=True, metavar="V", help="the version you consider")


def _run(args: argparse.Namespace) -> int:
    query = urllib.parse.urlencode({"from": args.from_version, "to": args.to_version})
    with open_client(args) as client:
        print_json(client.call("GET", f"/api/v1/extensions/{segment(args.extension_id)}/diff?{query}"))
    return 0


COMMAND = Command(name="diff", help="compare what two versions of an extension ask for", configure=_configure,
                  run=_run)
