"""``extctl build DIR [--wit DIR] [--cache DIR]``: build the extension's component with its toolchain.

componentize-js (a folder with ``package.json``: ``npm run build``) or componentize-py (a folder with
``app.py``), cached by content (see ``extctl._build``). Prints one line:
``<built|cached> <kind> <seconds>s <bytes> bytes key <key12> <component path>``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .._build import build_extension
from .._errors import UsageError
from ._base import Command

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, metavar="DIR", help="the extension folder (manifest.json at its root)")
    parser.add_argument("--wit", type=Path, metavar="DIR", help="the WIT directory (default: DIR/wit)")
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="build cache (default: $EXT_BUILD_CACHE or ~/.cache/ext-runtime)")


def _run(args: argparse.Namespace) -> int:
    src: Path = args.dir
    if not (src / "manifest.json").is_file():
        raise UsageError(f"{src} has no manifest.json")
    result = build_extension(src, wit=args.wit, cache_dir=args.cache)
    how = "cached" if result.cached else "built"
    print(f"{how} {result.kind} {result.seconds:.2f}s {result.size} bytes key {result.key[:12]} {result.component}")
    return 0


COMMAND = Command(name="build", help="build an extension's component (componentize-js / componentize-py)",
                  configure=_configure, run=_run)
