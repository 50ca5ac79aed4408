"""One debug event, and how it is laid out in a Redis stream entry.

The layout (key, fields, their order) is the contract's, shared with the gateway's tail: see
``contract._debug_stream``. This module holds the runner's event value and the per-event cut.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from contract import (
    CONTENT_HASH_PREFIX,
    LEVELS,
    STREAMS,
    ContentHashError,
    Level,
    Stream,
    entry_fields,
    format_content_hash,
    parse_content_hash,
    stream_key,
)

from ._errors import InvalidDebugEvent

__all__ = [
    "LEVELS",
    "STREAMS",
    "DebugEvent",
    "Level",
    "Stream",
    "clip_message",
    "event_fields",
    "normalize_content_hash",
    "now_ms",
    "stream_key",
]


def now_ms() -> int:
    """Wall-clock time in Unix milliseconds (the ``ts`` field)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class DebugEvent:
    """One line of guest output, one guest log call or one runner-side failure.

    ``tenant`` and ``extension`` are required: every event belongs to one stream, never to an ``unknown`` one.

    Raises:
        InvalidDebugEvent: ``level`` or ``stream`` is not one of the contract's values.
    """

    ts: int = field(default_factory=now_ms)
    level: Level
    stream: Stream
    tenant: str
    extension: str
    install: str | None = None
    request: str | None = None
    version: str | None = None
    content_hash: str | None = None
    message: str
    truncated: bool = False

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise InvalidDebugEvent(f"level {self.level!r} is not one of {', '.join(LEVELS)}")
        if self.stream not in STREAMS:
            raise InvalidDebugEvent(f"stream {self.stream!r} is not one of {', '.join(STREAMS)}")


def normalize_content_hash(value: str | None) -> str | None:
    """``sha256:<hex>``, the form every API uses, whether the context held bare hex or the prefixed form."""
    if value is None or not value:
        return None
    if value.startswith(CONTENT_HASH_PREFIX):
        return value
    try:
        return format_content_hash(parse_content_hash(value))
    except ContentHashError:
        return value


def clip_message(message: str, max_bytes: int) -> tuple[str, int, bool]:
    """Cut ``message`` to at most ``max_bytes`` of UTF-8 without splitting a character.

    Returns:
        ``(text, utf8_length, truncated)``. Unencodable code points (lone surrogates) become U+FFFD first, so
        the result always encodes.
    """
    try:
        encoded = message.encode("utf-8")
    except UnicodeEncodeError:
        message = message.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        encoded = message.encode("utf-8")
    if len(encoded) <= max_bytes:
        return message, len(encoded), False
    # A cut inside a multi-byte sequence leaves an incomplete tail; "ignore" drops exactly that tail.
    head = encoded[:max_bytes].decode("utf-8", "ignore")
    return head, len(head.encode("utf-8")), True


def event_fields(event: DebugEvent) -> list[str]:
    """The field/value list of the stream entry, flattened, in the contract's order."""
    return entry_fields(
        ts=event.ts,
        level=event.level,
        stream=event.stream,
        message=event.message,
        truncated=event.truncated,
        context={
            "tenant": event.tenant,
            "extension": event.extension,
            "install": event.install,
            "request": event.request,
            "version": event.version,
            "content_hash": event.content_hash,
        },
    )
