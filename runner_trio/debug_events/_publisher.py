"""The debug-event publisher: a bounded in-memory queue drained into Redis Streams by one trio task.

Producers are guest worker threads (host functions for ``logging.*``, stdout and stderr run there) and trio
tasks (runner-side failures). ``publish()`` therefore takes a plain ``threading.Lock`` for a few appends and
never waits on anything else: when the queue is full the event is dropped and counted, and an invocation never
slows down because Redis is slow or gone.

``run()`` is the only consumer. It writes batches through a redis-py *synchronous* pipeline inside
``trio.to_thread.run_sync`` (redis-py's asyncio client needs asyncio). When a write fails the batch in flight
is dropped (it may have been half applied, and a retry could duplicate it), the queue keeps filling up to its
bound, and the task probes Redis with ``PING`` under capped exponential backoff until it answers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final, Protocol, final

import redis
import trio
from redis.backoff import NoBackoff
from redis.retry import Retry

from contract import DEFAULT_STREAM_PREFIX

from ._event import DebugEvent, clip_message, event_fields, stream_key
from ._invocation import DEFAULT_BYTES_PER_INVOCATION, DEFAULT_EVENTS_PER_INVOCATION, InvocationEvents

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAXLEN",
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_RECONNECT_INITIAL_DELAY",
    "DEFAULT_RECONNECT_MAX_DELAY",
    "DEFAULT_SOCKET_TIMEOUT",
    "DEFAULT_STREAM_PREFIX",
    "DebugEventPublisher",
    "InvocationContext",
    "PublisherStatistics",
]

DEFAULT_MAXLEN: Final = 2000
DEFAULT_MAX_EVENT_BYTES: Final = 8192
DEFAULT_QUEUE_SIZE: Final = 10_000
"""Events held in memory while Redis is slow or down (at most ~80 MiB at the default event size cap)."""
DEFAULT_BATCH_SIZE: Final = 256
DEFAULT_SOCKET_TIMEOUT: Final = 2.0
DEFAULT_RECONNECT_INITIAL_DELAY: Final = 0.05
DEFAULT_RECONNECT_MAX_DELAY: Final = 2.0

_log = logging.getLogger(__name__)

_REDIS_FAILURES: Final = (redis.RedisError, OSError)


class InvocationContext(Protocol):
    """What ``for_invocation`` reads from an invocation (``contract.RequestContext`` fits)."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def extension_id(self) -> str: ...
    @property
    def install_id(self) -> str | None: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def version_id(self) -> str | None: ...
    @property
    def content_hash(self) -> str: ...


@dataclass(frozen=True)
class PublisherStatistics:
    """Counters of one publisher; ``dropped`` is the sum of the ``dropped_*`` figures.

    ``dropped_queue_full``: the queue was at ``queue_size`` (Redis slow or down); ``dropped_redis``: a write
    failed or Redis refused the entry; ``dropped_rate_limited``: over an invocation's budget;
    ``dropped_error``: an unexpected error while queueing (logged).
    """

    enabled: bool
    connected: bool
    queued: int
    published: int
    dropped_queue_full: int
    dropped_redis: int
    dropped_rate_limited: int
    dropped_error: int

    @property
    def dropped(self) -> int:
        return self.dropped_queue_full + self.dropped_redis + self.dropped_rate_limited + self.dropped_error


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")


@final
class DebugEventPublisher:
    """Publishes debug events to Redis Streams without ever blocking or failing the producer.

    Args:
        redis_url: ``redis://…``; ``None`` makes every method a no-op that counts nothing (Redis is optional).
        stream_prefix: key prefix (``RUNNER_DEBUG_REDIS_STREAM_PREFIX``).
        maxlen: approximate stream length kept by ``XADD MAXLEN ~`` (``RUNNER_DEBUG_REDIS_MAXLEN``).
        max_event_bytes: longest message in UTF-8 bytes; longer ones are cut on a character boundary and
            marked ``truncated 1`` (``RUNNER_DEBUG_MAX_EVENT_BYTES``).
        queue_size: events held while the writer is behind; beyond it new events are dropped.
        batch_size: most events written in one pipeline round trip.
        per_invocation_limit: events one invocation may emit (see :meth:`for_invocation`).
        per_invocation_bytes: message bytes one invocation may emit.
        socket_timeout: Redis connect and read timeout, which also bounds how long stopping ``run()`` can take.
        reconnect_initial_delay: first pause after a failed write; doubles per failed probe.
        reconnect_max_delay: cap of that pause.
        on_published: called with the number of events written, after each batch (from the trio thread).
        on_dropped: called with the number of events dropped, from whichever thread dropped them.
    """

    def __init__(
        self,
        redis_url: str | None,
        *,
        stream_prefix: str = DEFAULT_STREAM_PREFIX,
        maxlen: int = DEFAULT_MAXLEN,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        per_invocation_limit: int = DEFAULT_EVENTS_PER_INVOCATION,
        per_invocation_bytes: int = DEFAULT_BYTES_PER_INVOCATION,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        reconnect_initial_delay: float = DEFAULT_RECONNECT_INITIAL_DELAY,
        reconnect_max_delay: float = DEFAULT_RECONNECT_MAX_DELAY,
        on_published: Callable[[int], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        for name, value in (
            ("maxlen", maxlen),
            ("max_event_bytes", max_event_bytes),
            ("queue_size", queue_size),
            ("batch_size", batch_size),
            ("per_invocation_limit", per_invocation_limit),
            ("per_invocation_bytes", per_invocation_bytes),
            ("socket_timeout", socket_timeout),
            ("reconnect_initial_delay", reconnect_initial_delay),
            ("reconnect_max_delay", reconnect_max_delay),
        ):
            _positive(name, value)
        self._redis_url = redis_url or None
        self.stream_prefix = stream_prefix
        self.maxlen = maxlen
        self.max_event_bytes = max_event_bytes
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.per_invocation_limit = per_invocation_limit
        self.per_invocation_bytes = per_invocation_bytes
        self._socket_timeout = socket_timeout
        self._reconnect_initial = reconnect_initial_delay
        self._reconnect_max = reconnect_max_delay
        self._on_published = on_published
        self._on_dropped = on_dropped

        self._lock = threading.Lock()
        self._queue: deque[DebugEvent] = deque()
        # Set while run() waits on an empty queue; the producer that fills it wakes the writer.
        self._wakeup: trio.Event | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._trio_thread: int | None = None
        self._accepted = 0  # events ever queued
        self._settled = 0  # queued events since written or dropped (trio thread only)
        self._progress: trio.Event | None = None
        self._connected = False
        self._published = 0
        self._dropped_queue_full = 0
        self._dropped_redis = 0
        self._dropped_rate_limited = 0
        self._dropped_error = 0

    @property
    def enabled(self) -> bool:
        """False when no Redis URL was given."""
        return self._redis_url is not None

    def statistics(self) -> PublisherStatistics:
        with self._lock:
            return PublisherStatistics(
                enabled=self.enabled,
                connected=self._connected,
                queued=len(self._queue),
                published=self._published,
                dropped_queue_full=self._dropped_queue_full,
                dropped_redis=self._dropped_redis,
                dropped_rate_limited=self._dropped_rate_limited,
                dropped_error=self._dropped_error,
            )

    def for_invocation(self, ctx: InvocationContext) -> InvocationEvents:
        """A sink for one invocation's events, filled with its context and held to the per-invocation budget."""
        return InvocationEvents(
            self,
            tenant=ctx.tenant_id,
            extension=ctx.extension_id,
            install=ctx.install_id,
            request=ctx.request_id,
            version=ctx.version_id,
            content_hash=ctx.content_hash,
            max_events=self.per_invocation_limit,
            max_bytes=self.per_invocation_bytes,
            max_event_bytes=self.max_event_bytes,
        )

    # -- producers (any thread) -------------------------------------------------------------------------------

    def publish(self, event: DebugEvent) -> None:
        """Queue ``event`` for Redis; drop and count it when the queue is full. Never blocks, never raises."""
        if self._redis_url is None:
            return
        try:
            message, _, cut = clip_message(event.message, self.max_event_bytes)
            if cut:
                event = replace(event, message=message, truncated=True)
            self.enqueue_clipped(event)
        except Exception:  # a bug here must not fail the invocation that logged
            _log.exception("debug event dropped")
            with self._lock:
                self._dropped_error += 1
            self._notify_dropped(1)

    def enqueue_clipped(self, event: DebugEvent) -> None:
        """Queue an event whose message is already within ``max_event_bytes`` (the invocation sink's path)."""
        if self._redis_url is None:
            return
        wake: trio.Event | None = None
        token: trio.lowlevel.TrioToken | None = None
        in_trio_thread = False
        with self._lock:
            full = len(self._queue) >= self.queue_size
            if full:
                self._dropped_queue_full += 1
            else:
                self._queue.append(event)
                self._accepted += 1
                wake, self._wakeup = self._wakeup, None
                token = self._token
                in_trio_thread = threading.get_ident() == self._trio_thread
        if full:
            self._notify_dropped(1)
        elif wake is not None:
            if in_trio_thread:
                wake.set()
            elif token is not None:
                with contextlib.suppress(trio.RunFinishedError):  # the writer's run ended: nothing to wake
                    token.run_sync_soon(wake.set)

    def count_rate_limited(self, count: int) -> None:
        """Record events an invocation sink refused (over its budget)."""
        if count <= 0:
            return
        with self._lock:
            self._dropped_rate_limited += count
        self._notify_dropped(count)

    def _notify_dropped(self, count: int) -> None:
        if self._on_dropped is not None:
            try:
                self._on_dropped(count)
            except Exception:  # a broken metrics hook must not fail the producer
                _log.exception("debug events: on_dropped failed")

    # -- the writer (trio) ------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drain the queue into Redis until cancelled. Start it with ``nursery.start``.

        With no Redis URL it reports started and sleeps: callers treat both cases alike.

        Raises:
            RuntimeError: another ``run()`` of this publisher is active.
        """
        if self._redis_url is None:
            task_status.started()
            await trio.sleep_forever()
        if self._token is not None:
            raise RuntimeError("DebugEventPublisher.run() is already running")
        client = redis.Redis.from_url(
            self._redis_url,
            socket_timeout=self._socket_timeout,
            socket_connect_timeout=self._socket_timeout,
            retry=Retry(NoBackoff(), 0),  # reconnection is this task's job, with its own backoff
        )
        with self._lock:
            self._token = trio.lowlevel.current_trio_token()
            self._trio_thread = threading.get_ident()
        self._progress = trio.Event()
        self._connected = True  # optimistic until a write fails; the first batch tells
        try:
            task_status.started()
            await self._write_loop(client)
        finally:
            with self._lock:
                self._token = None
                self._trio_thread = None
                self._wakeup = None
                self._connected = False
            progress, self._progress = self._progress, None
            if progress is not None:
                progress.set()  # a flush() waiting on this run wakes up and finds it gone
            client.close()

    async def flush(self) -> None:
        """Wait until every event queued before this call is written or dropped (needs ``run()`` active).

        While Redis is down this waits for it to come back; bound it with ``trio.move_on_after``.

        Raises:
            RuntimeError: ``run()`` is not active (or stopped meanwhile) and events are still queued.
        """
        if self._redis_url is None:
            return
        with self._lock:
            target = self._accepted
        while self._settled < target:
            progress = self._progress
            if progress is None:
                raise RuntimeError("flush() needs run() to be active")
            await progress.wait()

    async def _write_loop(self, client: redis.Redis) -> None:
        while True:
            batch = await self._next_batch()
            try:
                results = await trio.to_thread.run_sync(self._write_batch, client, batch)
            except _REDIS_FAILURES as exc:
                _log.warning("debug events: Redis write failed (%s); %d events dropped", exc, len(batch))
                self._settle(written=0, failed=len(batch), connected=False)
                await self._wait_for_redis(client)
                continue
            failed = sum(1 for result in results if isinstance(result, Exception))
            if failed:
                _log.warning("debug events: Redis refused %d of %d entries", failed, len(batch))
            self._settle(written=len(batch) - failed, failed=failed, connected=True)

    async def _next_batch(self) -> list[DebugEvent]:
        while True:
            with self._lock:
                if self._queue:
                    count = min(self.batch_size, len(self._queue))
                    return [self._queue.popleft() for _ in range(count)]
                wakeup = self._wakeup = trio.Event()
            await wakeup.wait()

    def _write_batch(self, client: redis.Redis, batch: list[DebugEvent]) -> list[object]:
        # Spelled out rather than through Redis.xadd so the command is the contract's, word for word.
        pipe = client.pipeline(transaction=False)
        for event in batch:
            key = stream_key(self.stream_prefix, event.tenant, event.extension)
            pipe.execute_command(  # type: ignore[no-untyped-call]
                "XADD", key, "MAXLEN", "~", self.maxlen, "*", *event_fields(event)
            )
        return pipe.execute(raise_on_error=False)

    def _settle(self, *, written: int, failed: int, connected: bool) -> None:
        with self._lock:
            self._published += written
            self._dropped_redis += failed
            self._connected = connected
            self._settled += written + failed
        if written and self._on_published is not None:
            try:
                self._on_published(written)
            except Exception:  # nor stop the writer
                _log.exception("debug events: on_published failed")
        if failed:
            self._notify_dropped(failed)
        if self._progress is not None:
            self._progress.set()
            self._progress = trio.Event()

    async def _wait_for_redis(self, client: redis.Redis) -> None:
        with self._lock:
            self._connected = False
        delay = self._reconnect_initial
        while True:
            await trio.sleep(delay)
            try:
                await trio.to_thread.run_sync(client.ping)
            except _REDIS_FAILURES:
                delay = min(delay * 2, self._reconnect_max)
                continue
            with self._lock:
                self._connected = True
            _log.info("debug events: Redis is back")
            return
