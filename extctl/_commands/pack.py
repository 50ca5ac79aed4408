"""``extctl pack DIR --out BUNDLE [--strict]``: a deterministic bundle.tar.zst; prints ``sha256:<hex>``.

``.git``, ``__pycache__`` and ``node_modules`` are left out, and so is whatever ``DIR/.extignore`` (gitignore
syntax) names; a manifest with ``assets`` packs only those globs plus the manifest, the component entry, the
UI entry and the precompiled artifacts (``bundles.pack_directory``).

Manifest keys outside the schema are accepted (as the reference accepts them) and each is named in a warning on
stderr; ``--strict`` refuses them instead (exit 1, nothing written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bundles import MANIFEST_NAME, content_hash, pack_directory, parse_manifest, read_member

from .._errors import UsageError
from ._base import Command, write_atomic

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, metavar="DIR", help="the bundle tree (manifest.json at its root)")
    parser.add_argument("--out", required=True, type=Path, metavar="BUNDLE", help="where to write bundle.tar.zst")
    parser.add_argument(
        "--strict", action="store_true", help="refuse manifest keys outside the schema (default: warn and ignore)"
    )


def _run(args: argparse.Namespace) -> int:
    src: Path = args.dir
    out: Path = args.out
    if not src.is_dir():
        raise UsageError(f"{src} is not a directory")
    if out.resolve().is_relative_to(src.resolve()):
        raise UsageError(f"--out {out} is inside {src}: the bundle would pack itself")
    data = pack_directory(src)
    # The manifest as packed (pack_directory validated it; this only asks about keys outside the schema).
    manifest = parse_manifest(read_member(data, MANIFEST_NAME), strict=args.strict)
    for warning in manifest.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    write_atomic(out, data)
    print(content_hash(data))
    return 0


COMMAND = Command(name="pack", help="pack a directory into a deterministic bundle", configure=_configure, run=_run)
