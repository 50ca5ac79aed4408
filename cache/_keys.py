"""Validation of everything that becomes part of a file name: content hashes, relative paths, targets."""

from __future__ import annotations

import re
from typing import Final

from ._errors import InvalidKey

MAX_RELPATH_LENGTH: Final = 1024
MAX_TARGET_LENGTH: Final = 200

# The canonical form of the content-hash grammar (``bundles``, re-exported by ``contract``), copied on purpose:
# cache imports no package of ours, and either of those would bring HTTP clients into it.
_HEX_RE: Final = re.compile(r"[0-9a-f]{64}")
_TARGET_RE: Final = re.compile(r"[A-Za-z0-9._-]+")

# Names the cache itself owns inside an entry: a fill or subtree may never produce them.
INDEX_NAME: Final = "index.json"
PRECOMPILED_DIR: Final = "precompiled"


def validate_hex(hex_digest: str) -> str:
    """Return ``hex_digest`` if it is 64 lower-case hex digits (a sha256), else raise `InvalidKey`."""
    if not isinstance(hex_digest, str) or not _HEX_RE.fullmatch(hex_digest):
        raise InvalidKey(f"content hash must be 64 lower-case hex digits, got {hex_digest!r:.80}")
    return hex_digest


def is_hex(name: str) -> bool:
    return _HEX_RE.fullmatch(name) is not None


def validate_relpath(relpath: str) -> str:
    """Return ``relpath`` if it is a safe relative POSIX path inside an entry, else raise `InvalidKey`.

    Refused: empty, absolute, backslashes, NUL or other control characters, empty, ``.`` or ``..`` segments.
    """
    if not isinstance(relpath, str) or not relpath:
        raise InvalidKey("relative path must be a non-empty string")
    if len(relpath) > MAX_RELPATH_LENGTH:
        raise InvalidKey(f"relative path longer than {MAX_RELPATH_LENGTH} characters")
    if relpath.startswith("/") or "\\" in relpath:
        raise InvalidKey(f"relative path must be relative and use '/': {relpath!r}")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in relpath):
        raise InvalidKey(f"relative path contains a control character: {relpath!r}")
    if any(part in ("", ".", "..") for part in relpath.split("/")):
        raise InvalidKey(f"relative path has an empty, '.' or '..' segment: {relpath!r}")
    return relpath


def validate_subtree(name: str) -> str:
    """A subtree name is a single safe path segment that the cache does not reserve for itself."""
    validate_relpath(name)
    if "/" in name or name in (INDEX_NAME, PRECOMPILED_DIR):
        raise InvalidKey(f"subtree name must be one segment other than index.json/precompiled: {name!r}")
    return name


def validate_target(target: str) -> str:
    """An artifact target is used as a file name component: ``[A-Za-z0-9._-]+``, at most 200 characters."""
    if (
        not isinstance(target, str)
        or not _TARGET_RE.fullmatch(target)
        or len(target) > MAX_TARGET_LENGTH
        or target.startswith(".")
    ):
        raise InvalidKey(f"artifact target must match [A-Za-z0-9._-]+ and not start with '.': {target!r:.80}")
    return target


def artifact_relpath(target: str) -> str:
    return f"{PRECOMPILED_DIR}/{validate_target(target)}.cwasm"
