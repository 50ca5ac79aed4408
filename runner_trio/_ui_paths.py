"""Pure rules for serving a bundle's UI: which request paths are safe, and the headers of each answer.

Kept apart from the route so each rule can be read and tested on its own; nothing here touches the disk.
"""

from __future__ import annotations

import functools
import mimetypes
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_to_bytes

from werkzeug.http import parse_range_header

from contract import ContentHashError, parse_content_hash

__all__ = [
    "DEFAULT_CSP",
    "IMMUTABLE_CACHE_CONTROL",
    "REVALIDATE_CACHE_CONTROL",
    "SHARED_ORIGIN_SANDBOX",
    "UiOriginTemplate",
    "UnsafePath",
    "build_csp",
    "content_type_for",
    "parse_range",
    "parse_ui_content_hash",
    "safe_relative_path",
]

IMMUTABLE_CACHE_CONTROL: Final = "public, max-age=31536000, immutable"
REVALIDATE_CACHE_CONTROL: Final = "no-cache"
"""For an isolated origin's files: the URL stays when the install moves to another version, the ETag does not."""
DEFAULT_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'"
)
SHARED_ORIGIN_SANDBOX: Final = "sandbox allow-scripts allow-forms allow-popups"
"""The CSP directive on every HTML answer of the shared origin: a page opened top-level (not in the host page's
sandboxed frame) still gets an opaque origin, so its script never runs as the origin all extensions share. No
``allow-same-origin``, ever; inside the frame the iframe's own sandbox narrows it further."""
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


_UI_HASH_RE: Final = re.compile(r"(?:sha256:)?[0-9a-fA-F]{64}")


def parse_ui_content_hash(segment: str) -> str:
    """The ``{hash}`` segment of ``/ext-ui/{ext}/{hash}/``: ``sha256:<64 hex>`` or 64 bare hex, as
    ``/v1/execute`` accepts them; return the lower-case bare hex.

    Nothing may surround it (a path segment is taken as it is, unlike a JSON field that may be padded).

    Raises:
        ContentHashError: anything else.
    """
    if not _UI_HASH_RE.fullmatch(segment):
        raise ContentHashError(f"content hash {segment[:80]!r} is not 'sha256:' followed by 64 hex digits")
    return parse_content_hash(segment)


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


def build_csp(*, override: str | None = None, frame_ancestors: str | None = None, sandbox: str | None = None) -> str:
    """The Content-Security-Policy for HTML answers; ``sandbox`` (a whole directive) is added whatever the override."""
    policy = (override or DEFAULT_CSP).strip().rstrip(";")
    if frame_ancestors:
        policy += f"; frame-ancestors {frame_ancestors.strip()}"
    if sandbox:
        policy += f"; {sandbox}"
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


# -- one origin per install -------------------------------------------------------------------------------------

PLACEHOLDERS: Final = ("extension", "tenant")
MAX_LABEL_LENGTH: Final = 63
MAX_HOST_LENGTH: Final = 253
_LABEL_VALUE: Final = "[a-z0-9]+(?:-[a-z0-9]+)*"
_LABEL_VALUE_RE: Final = re.compile(_LABEL_VALUE)
_PLACEHOLDER_RE: Final = re.compile(r"\{([a-z]+)\}")


@dataclass(frozen=True)
class UiOriginTemplate:
    """``EXT_UI_ORIGIN_TEMPLATE``: the origin each install's UI is served from, e.g.
    ``http://{extension}--{tenant}.ext-ui.localhost:8080``.

    The host is made of labels separated by ``.``; a label is pieces separated by ``--``; a piece is
    ``{extension}``, ``{tenant}`` or literal text (lower-case letters, digits, single hyphens). Both placeholders
    appear exactly once. An id fills a placeholder verbatim when it is itself such text (``kitchen-sink``,
    ``acme``, a UUID): it can then hold no ``--`` and no ``.``, so a host splits back into exactly one
    (tenant, extension) and no two installs share an origin. Other ids (upper case, ``.``, ``_``) have no
    isolated origin (:meth:`origin_for` answers ``None``; the gateway falls back to the shared origin).
    """

    scheme: str
    host: str
    """The host part with its placeholders, lower-case."""
    port: int | None

    @classmethod
    def parse(cls, value: str) -> UiOriginTemplate:
        """Check and parse a template.

        Raises:
            ValueError: naming what is wrong (the settings table adds the variable's name).
        """
        parts = urllib.parse.urlsplit(value.strip())
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"{value!r} must start with http:// or https://")
        if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
            raise ValueError(f"{value!r} must be an origin: no path, query, fragment or credentials")
        host, _, port_text = parts.netloc.lower().partition(":")
        port = None
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise ValueError(f"{value!r} has an invalid port")
            port = int(port_text)
        seen: list[str] = []
        for label in host.split("."):
            for piece in label.split("--"):
                found = _PLACEHOLDER_RE.fullmatch(piece)
                if found:
                    if found.group(1) not in PLACEHOLDERS:
                        raise ValueError(f"unknown placeholder {piece} (known: {{extension}}, {{tenant}})")
                    seen.append(found.group(1))
                elif not _LABEL_VALUE_RE.fullmatch(piece):
                    raise ValueError(
                        f"{piece!r} in {value!r}: each host label is {{extension}}, {{tenant}} or lower-case "
                        "letters, digits and single hyphens, joined by '--'"
                    )
        if sorted(seen) != sorted(PLACEHOLDERS):
            raise ValueError(f"{value!r} must hold {{extension}} and {{tenant}} once each, in the host")
        return cls(parts.scheme, host, port)

    def origin_for(self, tenant: str, extension: str) -> str | None:
        """The origin of (tenant, extension)'s UI, or None when an id cannot be a host label."""
        if not (_LABEL_VALUE_RE.fullmatch(tenant) and _LABEL_VALUE_RE.fullmatch(extension)):
            return None
        host = self.host.replace("{tenant}", tenant).replace("{extension}", extension)
        if len(host) > MAX_HOST_LENGTH or any(len(label) > MAX_LABEL_LENGTH for label in host.split(".")):
            return None
        return f"{self.scheme}://{host}" + (f":{self.port}" if self.port is not None else "")

    def match(self, host: str) -> tuple[str, str] | None:
        """(tenant, extension) when ``host`` (a Host header, port ignored) is one of the template's origins."""
        name = host.lower()
        if name.startswith("["):
            return None  # an IPv6 literal is never a template host
        name = name.partition(":")[0]
        found = self._pattern.fullmatch(name)
        if found is None:
            return None
        tenant, extension = found.group("tenant"), found.group("extension")
        if self.origin_for(tenant, extension) is None:
            return None  # over-long labels: not an origin the gateway would ever frame
        return tenant, extension

    @property
    def _pattern(self) -> re.Pattern[str]:
        return _compiled(self.host)


@functools.lru_cache(maxsize=8)
def _compiled(host: str) -> re.Pattern[str]:
    pieces = re.split(r"(\{extension\}|\{tenant\})", host)
    return re.compile("".join(
        f"(?P<{piece[1:-1]}>{_LABEL_VALUE})" if piece in ("{extension}", "{tenant}") else re.escape(piece)
        for piece in pieces
    ))
