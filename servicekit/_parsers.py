"""Parsers for settings tables: each takes the raw environment value and returns the typed value.

A parser raises ``ValueError`` with a short message that does not repeat the variable's name: the table
adds the name (see :class:`servicekit.SettingsTable`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Final

__all__ = [
    "POSTGRES_SCHEMES",
    "REDIS_SCHEMES",
    "backend_url",
    "boolean",
    "comma_list",
    "host_port",
    "http_url",
    "integer",
    "optional_path",
    "optional_text",
    "path",
    "secret",
    "text",
    "url_scheme",
]

POSTGRES_SCHEMES: Final = ("postgresql", "postgres")
"""The schemes of a PostgreSQL connection URL (libpq accepts both)."""
REDIS_SCHEMES: Final = ("redis", "rediss", "unix")
"""The schemes redis-py's ``from_url`` accepts."""

# RFC 3986 scheme, then ':'. One letter before ':' is a Windows drive, not a scheme.
_SCHEME_RE: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def text(raw: str) -> str:
    """The value without surrounding whitespace."""
    return raw.strip()


def optional_text(raw: str) -> str | None:
    """The value without surrounding whitespace; blank means unset (``None``)."""
    return raw.strip() or None


def secret(min_length: int) -> Callable[[str], str | None]:
    """A parser of keys and tokens: blank means unset (``None``), else at least ``min_length`` characters."""

    def parse(raw: str) -> str | None:
        value = raw.strip()
        if value and len(value) < min_length:
            raise ValueError(f"must be at least {min_length} characters")
        return value or None

    return parse


def integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """A parser of integers in ``minimum..maximum`` (inclusive; no upper bound when ``maximum`` is None).

    ``_`` may group digits (``4_096``).
    """

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"expected an integer, got {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ValueError(f"must be {bound}, got {value}")
        return value

    return parse


def boolean(raw: str) -> bool:
    """``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off``, in any case."""
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def host_port(*, allow_unix: bool = False) -> Callable[[str], str]:
    """A parser of listen addresses ``HOST:PORT`` (and ``unix:PATH`` when ``allow_unix``), as Hypercorn binds."""

    def parse(raw: str) -> str:
        value = raw.strip()
        if allow_unix and value.startswith("unix:"):
            return value
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected HOST:PORT, got {raw!r}")
        return value

    return parse


def path(raw: str) -> Path:
    """A filesystem path; must not be blank."""
    if not raw.strip():
        raise ValueError("must not be empty")
    return Path(raw.strip())


def optional_path(raw: str) -> Path | None:
    """A filesystem path; blank means unset (``None``)."""
    return Path(raw.strip()) if raw.strip() else None


def http_url(raw: str) -> str | None:
    """An ``http(s)://`` URL without its trailing ``/``; blank means unset (``None``)."""
    value = raw.strip().rstrip("/")
    if not value:
        return None
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http(s) URL, got {raw!r}")
    return value


def comma_list(raw: str) -> tuple[str, ...]:
    """Comma-separated items, each stripped; empty items are dropped."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def url_scheme(raw: str) -> str | None:
    """The scheme of ``raw`` in lower case (``postgresql`` for ``postgresql://db/x``), or None for a plain path."""
    found = _SCHEME_RE.match(raw.strip())
    return found.group(1).lower() if found else None


def backend_url(*schemes: str, allow_path: bool = False) -> Callable[[str], str | None]:
    """A parser of settings that name a backend by URL: the scheme must be one of ``schemes``.

    A value with any other scheme is refused (``postgresql://...`` where only SQLite exists must stop
    start-up, not become a file named ``postgresql:``). With ``allow_path``, a value without a scheme is a
    filesystem path and passes as it is. Blank means unset (``None``). The value is returned stripped; the
    backend that opens it checks the rest (host, path, database).
    """
    if not schemes:
        raise ValueError("backend_url needs at least one scheme")
    allowed = tuple(scheme.lower() for scheme in schemes)
    expected = ", ".join(f"{scheme}://" for scheme in allowed) + (" or a file path" if allow_path else "")

    def parse(raw: str) -> str | None:
        value = raw.strip()
        if not value:
            return None
        scheme = url_scheme(value)
        if scheme is None:
            if allow_path:
                return value
            raise ValueError(f"expected a URL ({expected}), got {raw!r}")
        if scheme not in allowed:
            raise ValueError(f"unsupported scheme {scheme!r}: expected {expected}")
        if not value[len(scheme) + 1:].startswith("//"):
            raise ValueError(f"expected {scheme}://..., got {raw!r}")
        return value

    return parse
