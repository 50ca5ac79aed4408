"""``RUNNER_IDEMPOTENCY_URL`` to a record store."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from servicekit import POSTGRES_SCHEMES

from ._postgres import PostgresRecords
from ._records import RecordStore
from ._redis import RedisRecords
from ._sqlite import SqliteRecords

__all__ = ["open_records"]

_REDIS_SCHEMES = ("redis", "rediss", "unix")


def open_records(url: str | None, *, default_path: Path) -> RecordStore:
    """``sqlite:///path`` (``default_path`` when ``url`` is empty), ``redis://host:port/db`` or
    ``postgresql://user@host:port/db``.

    Raises:
        ValueError: another scheme, or a ``sqlite:`` URL without a path.
    """
    if not url:
        return SqliteRecords(default_path)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in _REDIS_SCHEMES:
        return RedisRecords(url)
    if parts.scheme in POSTGRES_SCHEMES:
        if not parts.netloc and not parts.path.strip("/"):
            raise ValueError("expected postgresql://user@host:port/db")
        return PostgresRecords(url)
    if parts.scheme == "sqlite":
        if not parts.path or parts.netloc:
            raise ValueError("expected sqlite:///absolute/path")
        return SqliteRecords(Path(urllib.parse.unquote(parts.path)))
    raise ValueError(
        f"expected sqlite:///path, redis://host:port/db or postgresql://user@host:port/db, got scheme {parts.scheme!r}"
    )
