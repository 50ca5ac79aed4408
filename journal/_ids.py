"""Entry ids, the entry document's format name, and where an entry is stored."""

from __future__ import annotations

import re
import secrets
from typing import Final

from bundles.store import validate_key

__all__ = ["DEFAULT_PREFIX", "JOURNAL_FORMAT", "entry_key", "new_entry_id"]

JOURNAL_FORMAT: Final = "alga-journal/1"
"""The ``format`` of an entry document; a reader refuses nothing by it yet, but a new shape gets a new name."""
DEFAULT_PREFIX: Final = "journal"
"""Where entries live in the bundle store's backend, beside (never inside) the ``sha256/`` bundle objects."""

# The execute contract's id grammar (contract.ID_PATTERN; the journal sits beside contract, so it is
# restated): ":" and "@" are escaped with "~", which ids never contain and keys allow, so the mapping is
# one-to-one and a key segment never holds a "/".
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
_ESCAPES: Final = {":": "~3A", "@": "~40"}


def new_entry_id() -> str:
    """A fresh entry id: 32 lower-case hex digits (128 random bits; a safe id for URLs and keys)."""
    return secrets.token_hex(16)


def _segment(what: str, value: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError(
            f"{what} {str(value)[:80]!r} is not an id (1-128 of A-Z a-z 0-9 . _ - : @, letter or digit first)"
        )
    for char, escape in _ESCAPES.items():
        value = value.replace(char, escape)
    return value


def entry_key(tenant_id: str, extension_id: str, entry_id: str, *, prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}/v1/{tenant}/{extension}/{entry_id}.jrnl``: the object key of one entry.

    One tenant's entries share a key prefix (``{prefix}/v1/{tenant}/``), so retention and a tenant's
    deletion can work by prefix, and the key is the AES-GCM associated data binding a blob to its owner.

    Raises:
        ValueError: an id is not in the execute contract's id grammar, or the prefix is not a safe key.
    """
    key = "/".join(
        (
            prefix,
            "v1",
            _segment("tenant id", tenant_id),
            _segment("extension id", extension_id),
            _segment("entry id", entry_id) + ".jrnl",
        )
    )
    return validate_key(key)
