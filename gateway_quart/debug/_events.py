"""Stream entries as the reference's JSON events, the tail's filters, and the stream key.

A Redis entry written by the runner (``ts level stream [tenant] [extension] [install] [request] [version]
[content_hash] message truncated``) becomes::

    {"id": "1712-0", "ts": "1712000000000", "level": "info", "stream": "log", "tenantId": …, "extensionId": …,
     "installId": …, "requestId": …, "versionId": …, "contentHash": …, "message": "…", "truncated": false}

as the reference gateway sends it: ``ts`` stays the string Redis holds (Unix milliseconds), optional ids are
left out when the entry has none, ``truncated`` is a boolean. ``id`` (the stream entry id) is ours; clients
that do not know it ignore it. Control messages carry a ``type`` key, which events never have:
``{"type": "heartbeat", "ts": <ms>}``, ``{"type": "dropped", "count": n}``, ``{"type": "error", "code": …}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "LEVELS",
    "STREAMS",
    "TailFilters",
    "entry_to_event",
    "is_stream_id",
    "stream_key",
    "valid_key_part",
]

LEVELS: Final = ("trace", "debug", "info", "warn", "error")
STREAMS: Final = ("stdout", "stderr", "log")
_RANK: Final = {level: rank for rank, level in enumerate(LEVELS)}
_DEFAULT_RANK: Final = _RANK["info"]  # an entry with a level we do not know is treated as info

# Lower-cased tenant and extension ids go into the key between ":" separators: a ":" inside one would let
# tenant "a" + extension "b:c" read the stream of tenant "a:b" + extension "c".
_KEY_PART: Final = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,127}$")
_STREAM_ID: Final = re.compile(r"^\d{1,20}-\d{1,20}$")

_OPTIONAL: Final = (
    ("tenant", "tenantId"),
    ("extension", "extensionId"),
    ("install", "installId"),
    ("request", "requestId"),
    ("version", "versionId"),
    ("content_hash", "contentHash"),
)


def valid_key_part(value: str) -> bool:
    """Whether ``value`` (a tenant or extension id) can name a stream without ambiguity."""
    return bool(_KEY_PART.match(value.lower()))


def stream_key(prefix: str, tenant: str, extension: str) -> str:
    """``<prefix><tenant>:<extension>``, ids lower-cased: the key the runner writes to."""
    return f"{prefix}{tenant.lower()}:{extension.lower()}"


def is_stream_id(value: str) -> bool:
    return bool(_STREAM_ID.match(value))


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def entry_to_event(entry_id: bytes | str, fields: Mapping[bytes | str, bytes | str]) -> dict[str, Any]:
    """One stream entry as the JSON event clients receive."""
    raw = {_text(name): _text(value) for name, value in fields.items()}
    event: dict[str, Any] = {
        "id": _text(entry_id),
        "ts": raw.get("ts", ""),
        "level": raw.get("level") or "info",
        "stream": raw.get("stream") or "log",
    }
    for field_name, json_name in _OPTIONAL:
        value = raw.get(field_name)
        if value:
            event[json_name] = value
    event["message"] = raw.get("message", "")
    event["truncated"] = raw.get("truncated") in ("1", "true")
    return event


@dataclass(frozen=True)
class TailFilters:
    """What a tail lets through. Every set filter must match.

    Attributes:
        request_id: exact request id (case-insensitive, as the reference compares).
        install_id: exact install id (case-insensitive).
        min_level: the least severe level shown: ``warn`` shows ``warn`` and ``error``. A minimum rather than an
            exact match, because "this level and worse" is what one looks for while debugging.
        streams: the streams shown (``stdout``, ``stderr``, ``log``); empty means all.
    """

    request_id: str | None = None
    install_id: str | None = None
    min_level: str | None = None
    streams: frozenset[str] = frozenset()

    @classmethod
    def parse(
        cls,
        *,
        request_id: str | None = None,
        install_id: str | None = None,
        level: str | None = None,
        stream: str | None = None,
    ) -> TailFilters:
        """Filters from query parameters; ``stream`` may list several, comma-separated.

        Raises:
            ValueError: an unknown level or stream; ``args[0]`` names the parameter.
        """
        min_level = (level or "").strip().lower() or None
        if min_level is not None and min_level not in _RANK:
            raise ValueError("level", f"must be one of {', '.join(LEVELS)}")
        streams = frozenset(part.strip().lower() for part in (stream or "").split(",") if part.strip())
        unknown = streams - set(STREAMS)
        if unknown:
            raise ValueError("stream", f"must be among {', '.join(STREAMS)}")
        return cls(
            request_id=(request_id or "").strip().lower() or None,
            install_id=(install_id or "").strip().lower() or None,
            min_level=min_level,
            streams=streams,
        )

    @property
    def passes_everything(self) -> bool:
        return self == TailFilters()

    def matches(self, event: Mapping[str, Any]) -> bool:
        if self.request_id is not None and str(event.get("requestId", "")).lower() != self.request_id:
            return False
        if self.install_id is not None and str(event.get("installId", "")).lower() != self.install_id:
            return False
        if self.min_level is not None and _RANK.get(event.get("level", ""), _DEFAULT_RANK) < _RANK[self.min_level]:
            return False
        return not self.streams or event.get("stream") in self.streams
