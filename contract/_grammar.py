"""The id grammar and the content-hash grammar, one of each.

Ids (tenant, extension, install): 1-128 characters, a letter or digit first, then letters, digits and
``. _ -``. The execute contract also carries ``:`` and ``@`` (the reference runner's clients send ids such as
``acme:billing`` or ``ext@vendor``), so there are two named levels of the one grammar:

- :data:`ID_PATTERN`, what ``/v1/execute`` accepts;
- :data:`SAFE_ID_PATTERN`, the subset without ``:`` and ``@`` that the gateway issues: such an id is one URL
  path segment, one object-key segment and one file name as it is, and never holds the debug stream key's
  ``:`` separator.

Content hashes: the bundle format defines them (sha256 of the compressed archive bytes), so the grammar lives
in :mod:`bundles` and is re-exported here; this module adds the forms a service needs on top of it. The
direction keeps ``bundles`` free of service knowledge: it does not import this package, which knows the
services' wire shapes.
"""

from __future__ import annotations

import re
from typing import Final

from bundles import ContentHashError, parse_content_hash

__all__ = [
    "CONTENT_HASH_PREFIX",
    "ID_PATTERN",
    "MAX_ID_LENGTH",
    "SAFE_ID_PATTERN",
    "ContentHashError",
    "format_content_hash",
    "is_id",
    "is_safe_id",
    "parse_content_hash",
    "parse_prefixed_content_hash",
]

MAX_ID_LENGTH: Final = 128
CONTENT_HASH_PREFIX: Final = "sha256:"

_ID_HEAD: Final = "A-Za-z0-9"
_ID_TAIL: Final = "A-Za-z0-9._"  # "-" goes last in the class, after any extra characters


def _id_pattern(extra: str) -> re.Pattern[str]:
    return re.compile(f"[{_ID_HEAD}][{_ID_TAIL}{extra}-]{{0,{MAX_ID_LENGTH - 1}}}")


ID_PATTERN: Final = _id_pattern(":@")
"""An id as the execute contract carries it; use with ``fullmatch``."""
SAFE_ID_PATTERN: Final = _id_pattern("")
"""An id the gateway issues (no ``:``, no ``@``); use with ``fullmatch``."""


def is_id(value: str) -> bool:
    """Whether ``value`` is an id the execute contract accepts."""
    return ID_PATTERN.fullmatch(value) is not None


def is_safe_id(value: str) -> bool:
    """Whether ``value`` is an id of the gateway's narrower alphabet."""
    return SAFE_ID_PATTERN.fullmatch(value) is not None


def format_content_hash(hex_digest: str) -> str:
    """``sha256:<hex>``, the form every API writes (object keys and cache directories use the bare hex)."""
    return CONTENT_HASH_PREFIX + hex_digest


def parse_prefixed_content_hash(value: str) -> str:
    """Accept exactly ``sha256:<64 hex>`` (any case, nothing around it), as a URL path segment must be.

    Returns:
        the lower-case bare hex.

    Raises:
        ContentHashError: anything else, bare hex included.
    """
    hex_digest = parse_content_hash(value)
    if not value.startswith(CONTENT_HASH_PREFIX) or value[len(CONTENT_HASH_PREFIX):].lower() != hex_digest:
        raise ContentHashError(f"content hash {value[:80]!r} is not 'sha256:' followed by 64 hex digits")
    return hex_digest
