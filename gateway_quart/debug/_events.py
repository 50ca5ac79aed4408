"""The tail's filters, and the stream layout as the tail reads it.

The layout (the key, the entry fields, the JSON event each entry becomes) is the contract's, shared with the
runner that writes the entries: see ``contract._debug_stream``. A Redis entry becomes::

    {"id": "1712-0", "ts": "1712000000000", "level": "info", "stream": "log", "tenantId": …, "extensionId": …,
     "installId": …, "requestId": …, "versionId": …, "contentHash": …, "message": "…", "truncated": false}

Control messages carry a ``type`` key, which events never have: ``{"type": "heartbeat", "ts": <ms>}``,
``{"type": "dropped", "count": n}``, ``{"type": "error", "code": …}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from contract import (
    JSON_NAMES,
    LEVELS,
    STREAMS,
    entry_to_event,
    stream_key,
)

__all__ = [
    "LEVELS",
    "STREAMS",
    "TailFilters",
    "entry_to_event",
    "is_stream_id",
    "stream_key",
]

_RANK: Final[dict[str, int]] = {level: rank for rank, level in enumerate(LEVELS)}
_DEFAULT_RANK: Final = _RANK["info"]  # an entry with a level we do not know is treated as info

_STREAM_ID: Final = re.compile(r"^\d{1,20}-\d{1,20}$")
_REQUEST_ID: Final = JSON_NAMES["request"]
_INSTALL_ID: Final = JSON_NAMES["install"]


def is_stream_id(value: str) -> bool:
    return bool(_STREAM_ID.match(value))


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
        if self.request_id is not None and str(event.get(_REQUEST_ID, "")).lower() != self.request_id:
            return False
        if self.install_id is not None and str(event.get(_INSTALL_ID, "")).lower() != self.install_id:
            return False
        if self.min_level is not None and _RANK.get(event.get("level", ""), _DEFAULT_RANK) < _RANK[self.min_level]:
            return False
        return not self.streams or event.get("stream") in self.streams
