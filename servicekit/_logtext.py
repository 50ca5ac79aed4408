"""Text from outside (a guest's log line, a remote error message) made safe for our own log.

A newline in a guest's log message used to start a new line in the runner's log, so a guest could write lines
that look like the runner's own (``ERROR runner_trio: …``) with no tenant or extension. :func:`one_line`
escapes every control character (``\\n`` becomes the two characters ``\\`` ``n``) and bounds the length; the
rest of the text, Unicode included, is kept as it is.
"""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = ["DEFAULT_MAX_LOG_TEXT", "one_line"]

DEFAULT_MAX_LOG_TEXT: Final = 4096
_ESCAPES: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def one_line(text: str, *, limit: int = DEFAULT_MAX_LOG_TEXT) -> str:
    """``text`` on one line: control characters (Unicode category C*, line and paragraph separators too)
    escaped, backslashes doubled so an escape cannot be forged, cut at ``limit`` characters with ``…``."""
    cut = len(text) > limit
    out = []
    for char in text[:limit]:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif unicodedata.category(char)[0] == "C" or char in "\u2028\u2029\x85":
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
        else:
            out.append(char)
    return "".join(out) + ("…" if cut else "")
