"""The per-invocation sink: context filled in once, and a budget so one chatty guest cannot flood the stream.

The engine calls ``emit`` for guest ``logging.*`` calls and for each stdout/stderr line; the runner calls it for
its own failures (timeouts, traps, denied egress, bundle errors). Past the budget the sink emits one warning
that says so, then drops (and counts) the rest: a guest printing in a loop costs its own invocation a few
counter increments per line, never the stream's 2000-entry window or Redis memory.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final, final

from ._errors import InvalidDebugEvent
from ._event import LEVELS, STREAMS, DebugEvent, Level, Stream, clip_message, normalize_content_hash

if TYPE_CHECKING:
    from ._publisher import DebugEventPublisher

__all__ = [
    "BUDGET_EXHAUSTED_MESSAGE",
    "DEFAULT_BYTES_PER_INVOCATION",
    "DEFAULT_EVENTS_PER_INVOCATION",
    "InvocationEvents",
]

DEFAULT_EVENTS_PER_INVOCATION: Final = 1000
DEFAULT_BYTES_PER_INVOCATION: Final = 512 * 1024
"""Message bytes (UTF-8, after the per-event cut) one invocation may publish."""

BUDGET_EXHAUSTED_MESSAGE: Final = "debug events truncated for this invocation"


@final
class InvocationEvents:
    """Debug events of one invocation. Thread-safe; ``emit`` never blocks and never fails the invocation.

    Made by :meth:`DebugEventPublisher.for_invocation`; the keyword arguments mirror that context.
    """

    def __init__(
        self,
        publisher: DebugEventPublisher,
        *,
        tenant: str,
        extension: str,
        install: str | None,
        request: str | None,
        version: str | None,
        content_hash: str | None,
        max_events: int,
        max_bytes: int,
        max_event_bytes: int,
    ) -> None:
        self._publisher = publisher
        self._tenant = tenant
        self._extension = extension
        self._install = install or None
        self._request = request or None
        self._version = version or None
        self._content_hash = normalize_content_hash(content_hash)
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._max_event_bytes = max_event_bytes
        self._lock = threading.Lock()
        self._events = 0
        self._bytes = 0
        self._exhausted = False
        self._dropped = 0

    @property
    def enabled(self) -> bool:
        """False when the publisher has no Redis: callers may skip building messages."""
        return self._publisher.enabled

    @property
    def emitted(self) -> int:
        """Events accepted from this invocation (the budget notice not included)."""
        return self._events

    @property
    def dropped(self) -> int:
        """Events refused because the budget was spent."""
        return self._dropped

    def emit(self, level: Level, stream: Stream, message: str) -> None:
        """Publish one event of this invocation, within its budget.

        Raises:
            InvalidDebugEvent: ``level`` or ``stream`` is outside the contract (a bug in the caller).
        """
        if not self._publisher.enabled:
            return
        if level not in LEVELS or stream not in STREAMS:
            raise InvalidDebugEvent(f"level {level!r} / stream {stream!r} outside the contract")
        text, size, truncated = clip_message(message, self._max_event_bytes)
        notice = False
        with self._lock:
            if self._exhausted or self._events >= self._max_events or self._bytes + size > self._max_bytes:
                notice = not self._exhausted
                self._exhausted = True
                self._dropped += 1
                accepted = False
            else:
                self._events += 1
                self._bytes += size
                accepted = True
        if accepted:
            self._publisher.enqueue_clipped(self._event(level, stream, text, truncated))
            return
        if notice:
            self._publisher.enqueue_clipped(self._event("warn", "log", BUDGET_EXHAUSTED_MESSAGE, False))
        self._publisher.count_rate_limited(1)

    def _event(self, level: Level, stream: Stream, message: str, truncated: bool) -> DebugEvent:
        return DebugEvent(
            level=level,
            stream=stream,
            tenant=self._tenant,
            extension=self._extension,
            install=self._install,
            request=self._request,
            version=self._version,
            content_hash=self._content_hash,
            message=message,
            truncated=truncated,
        )
