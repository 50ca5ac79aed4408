"""``extctl manifest-schema [--out FILE]``: the JSON Schema of manifest.json, for editors.

Write it beside the manifest (``--out manifest.schema.json``) and add ``"$schema": "./manifest.schema.json"`` to
``manifest.json``; editors then check the manifest as it is typed. ``parse_manifest`` (``extctl pack``) stays
the judge: the schema cannot say everything it checks (docs/manifest.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bundles import manifest_schema_text

from ._base import Command, write_atomic

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, metavar="FILE", help="write it to FILE (default: stdout)")


def _run(args: argparse.Namespace) -> int:
    text = manifest_schema_text()
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_atomic(args.out, text.encode("utf-8"))
    return 0


COMMAND = Command(name="manifest-schema", help="print the JSON Schema of manifest.json (for editors)",
                  configure=_configure, run=_run)
