"""Debug events: guest logs, stdout/stderr lines and runner-side failures, published to Redis Streams.

Wire-compatible with the reference runner (see ``_event`` for the entry layout). Redis is optional: without a
URL, or while Redis is down, invocations go on untouched and the publisher counts what it dropped.

Typical use::

    publisher = DebugEventPublisher(config.debug_redis_url, stream_prefix=config.debug_stream_prefix,
                                    maxlen=config.debug_maxlen, max_event_bytes=config.debug_max_event_bytes,
                                    on_published=metrics.debug_events.inc,
                                    on_dropped=metrics.debug_events_dropped.inc)
    await nursery.start(publisher.run)
    ...
    events = publisher.for_invocation(request.context)   # per invocation
    events.emit("info", "log", message)                  # from a host function's worker thread or a task
"""

from ._errors import DebugEventError, InvalidDebugEvent
from ._event import LEVELS, STREAMS, DebugEvent, Level, Stream, clip_message, event_fields, now_ms, stream_key
from ._invocation import (
    BUDGET_EXHAUSTED_MESSAGE,
    DEFAULT_BYTES_PER_INVOCATION,
    DEFAULT_EVENTS_PER_INVOCATION,
    InvocationEvents,
)
from ._publisher import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_MAXLEN,
    DEFAULT_QUEUE_SIZE,
    DEFAULT_RECONNECT_INITIAL_DELAY,
    DEFAULT_RECONNECT_MAX_DELAY,
    DEFAULT_SOCKET_TIMEOUT,
    DEFAULT_STREAM_PREFIX,
    DebugEventPublisher,
    InvocationContext,
    PublisherStatistics,
)

__all__ = [
    "BUDGET_EXHAUSTED_MESSAGE",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_BYTES_PER_INVOCATION",
    "DEFAULT_EVENTS_PER_INVOCATION",
    "DEFAULT_MAXLEN",
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_RECONNECT_INITIAL_DELAY",
    "DEFAULT_RECONNECT_MAX_DELAY",
    "DEFAULT_SOCKET_TIMEOUT",
    "DEFAULT_STREAM_PREFIX",
    "LEVELS",
    "STREAMS",
    "DebugEvent",
    "DebugEventError",
    "DebugEventPublisher",
    "InvalidDebugEvent",
    "InvocationContext",
    "InvocationEvents",
    "Level",
    "PublisherStatistics",
    "Stream",
    "clip_message",
    "event_fields",
    "now_ms",
    "stream_key",
]
