"""The debug tail: follow an extension's debug events from Redis Streams over WebSocket or SSE, and a console.

The runner writes events (``runner_trio.debug_events``); this package reads them back for the caller's own
tenant only. The gateway registers the blueprint and supplies the ``authorize`` callable::

    app.register_blueprint(create_debug_blueprint(redis_url=settings.debug_redis_url, authorize=authorize))

Errors are the gateway's own (``Unauthorized``, ``Forbidden``, ``InvalidRequest``; 503 ``ApiError`` codes
``too_many_tails`` and ``debug_stream_unavailable``).
"""

from ._blueprint import (
    DEFAULT_MAX_TAILS,
    DEFAULT_REAUTHORIZE_S,
    DEFAULT_STREAM_PREFIX,
    PERMISSION,
    STREAM_PATH,
    Authorize,
    DebugCaller,
    DebugCredentials,
    create_debug_blueprint,
)
from ._events import LEVELS, STREAMS, TailFilters, entry_to_event, stream_key
from ._tail import (
    DEFAULT_BLOCK_MS,
    DEFAULT_BUFFER_SIZE,
    DEFAULT_HEARTBEAT,
    DEFAULT_LAST_N,
    MAX_LAST_N,
    TailSubscription,
    replay_and_tail,
)

__all__ = [
    "DEFAULT_BLOCK_MS",
    "DEFAULT_BUFFER_SIZE",
    "DEFAULT_HEARTBEAT",
    "DEFAULT_LAST_N",
    "DEFAULT_MAX_TAILS",
    "DEFAULT_REAUTHORIZE_S",
    "DEFAULT_STREAM_PREFIX",
    "LEVELS",
    "MAX_LAST_N",
    "PERMISSION",
    "STREAMS",
    "STREAM_PATH",
    "Authorize",
    "DebugCaller",
    "DebugCredentials",
    "TailFilters",
    "TailSubscription",
    "create_debug_blueprint",
    "entry_to_event",
    "replay_and_tail",
    "stream_key",
]
