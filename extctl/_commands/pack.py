"""``extctl pack DIR --out BUNDLE``: a deterministic bundle.tar.zst; prints ``sha256:<hex>``."""

from __future__ import annotations

import argparse
from pathlib import Path

from bundles import content_hash, pack_directory

from .._errors import UsageError
from ._base import Command, write_atomic

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, metavar="DIR", help="the bundle tree (manifest.json at its root)")
    parser.add_argument("--out", required=True, type=Path, metavar="BUNDLE", help="where to write bundle.tar.zst")


def _run(args: argparse.Namespace) -> int:
    src: Path = args.dir
    out: Path = args.out
    if not src.is_dir():
        raise UsageError(f"{src} is not a directory")
    if out.resolve().is_relative_to(src.resolve()):
        raise UsageError(f"--out {out} is inside {src}: the bundle would pack itself")
    data = pack_directory(src)
    write_atomic(out, data)
    print(content_hash(data))
    return 0


COMMAND = Command(name="pack", help="pack a directory into a deterministic bundle", configure=_configure, run=_run)
