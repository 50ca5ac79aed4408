"""Pure rules for serving a bundle's UI: which request paths are safe, and the headers of each answer.

Kept apart from the route so each rule can be read and tested on its own; nothing here touches the disk.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_to_bytes

from werkzeug.http import parse_range_header

__all__ = [
    "DEFAULT_CSP",
    "IMMUTABLE_CACHE_CONTROL",
    "UnsafePath",
    "build_csp",
    "content_type_for",
    "parse_range",
    "safe_relative_path",
]

IMMUTABLE_CACHE_CONTROL: Final = "public, max-age=31536000, immutable"
DEFAULT_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'"
)
DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"
MAX_PATH_LENGTH: Final = 1024

_CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".txt": "text/plain; charset=utf-8",
    ".wasm": "application/wasm",
    ".webmanifest": "application/manifest+json",
}
_INVALID_RANGE: Final = re.compile(r"bytes=(?:[0-9]+-[0-9]+|-0+)")
"""The single ranges werkzeug's parser drops as malformed that RFC 9110 calls invalid (a 416): written
backwards (``bytes=5-1``, werkzeug has already refused it when this matches) or an empty suffix (``bytes=-0``)."""


class UnsafePath(ValueError):
    """The requested path could reach outside the UI subtree, or is not a clean relative path."""


def safe_relative_path(raw: str) -> str:
    """Return the clean relative path for ``raw`` (the part after ``/ext-ui/{ext}/{hash}/``), or raise.

    ``raw`` is as the client sent it, percent-encoding included, so encoded tricks (``%2e%2e``, ``%2f``,
    ``%5c``, ``%00``, overlong UTF-8) are seen and refused rather than decoded into something harmless-looking.

    Raises:
        UnsafePath: absolute, dot segments, hidden segments, backslash, control characters, invalid UTF-8.
    """
    if len(raw) > MAX_PATH_LENGTH:
        raise UnsafePath("path too long")
    segments: list[str] = []
    for raw_segment in raw.split("/"):
        try:
            # unquote_to_bytes encodes unescaped text as UTF-8 first: a lone surrogate fails there.
            decoded = unquote_to_bytes(raw_segment)
            # Strict decoding refuses overlong forms (e.g. C0 AE for '.') and encoded surrogates.
            segment = decoded.decode("utf-8", errors="strict")
        except UnicodeError:
            raise UnsafePath("path is not valid UTF-8") from None
        if raw_segment == "" and not segments and raw.startswith("/"):
            raise UnsafePath("absolute path")
        if segment == "":
            continue  # empty segments (a//b, trailing /) collapse
        if "/" in segment or "\\" in segment:
            raise UnsafePath("encoded separator or backslash")
        if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs"} for ch in segment):
            raise UnsafePath("control character")
        if segment.startswith("."):
            raise UnsafePath("dot or hidden segment")
        if ":" in segment and not segments:
            raise UnsafePath("drive or scheme prefix")
        segments.append(unicodedata.normalize("NFC", segment))
    return "/".join(segments)


def content_type_for(path: str) -> str:
    """The Content-Type for a file name: a fixed table first, then the platform's, else octet-stream."""
    dot = path.rfind(".")
    if dot != -1:
        known = _CONTENT_TYPES.get(path[dot:].lower())
        if known is not None:
            return known
    guessed, _ = mimetypes.guess_type(path, strict=True)
    return guessed or DEFAULT_CONTENT_TYPE


def build_csp(*, override: str | None = None, frame_ancestors: str | None = None) -> str:
    """The Content-Security-Policy for HTML answers."""
    policy = (override or DEFAULT_CSP).strip().rstrip(";")
    if frame_ancestors:
        policy += f"; frame-ancestors {frame_ancestors.strip()}"
    return policy


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | bool | None:
    """Interpret a ``Range`` header for a file of ``size`` bytes (parsed by werkzeug).

    Returns ``None`` when the whole file should be sent (no header, or one we do not honour such as several
    ranges), a ``ByteRange`` for a satisfiable single range, and ``False`` for an unsatisfiable one (416).
    """
    if not header:
        return None
    parsed = parse_range_header(header)
    if parsed is None:
        return False if _INVALID_RANGE.fullmatch(header.strip()) else None
    if parsed.units != "bytes" or len(parsed.ranges) != 1:
        return None
    start, stop = parsed.ranges[0]  # stop is exclusive, None up to the end; a negative start is a suffix
    if start < 0:
        # Not werkzeug's range_for_length, which refuses a suffix longer than the file: RFC 9110 serves it all.
        return ByteRange(max(0, size + start), size - 1) if size else False
    if start >= size:
        return False
    return ByteRange(start, min(size if stop is None else stop, size) - 1)
