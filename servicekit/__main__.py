"""``python -m servicekit [--check] FILE...``: regenerate the settings tables marked in Markdown documents.

With ``--check`` nothing is written; the exit status is 1 when a document differs from the code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._docs import render_settings_doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m servicekit", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report documents that are out of date")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    stale = []
    for file in args.files:
        text = file.read_text()
        rendered = render_settings_doc(text)
        if rendered == text:
            continue
        stale.append(file)
        if not args.check:
            file.write_text(rendered)
    for file in stale:
        verb = "is out of date" if args.check else "regenerated"
        print(f"{file}: {verb}", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
