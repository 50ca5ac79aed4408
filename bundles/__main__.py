"""``python -m bundles [PATH]``: (re)write the manifest's JSON Schema (default ``bundles/manifest.schema.json``).

``tests/bundles/test_manifest_schema.py`` fails when the shipped file is not what the validator's rules
generate, as ``python -m servicekit docs/configuration.md`` does for the settings tables.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ._schema import MANIFEST_SCHEMA_NAME, manifest_schema_text


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else Path(__file__).with_name(MANIFEST_SCHEMA_NAME)
    target.write_text(manifest_schema_text(), encoding="utf-8")
    print(f"{target}: regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
