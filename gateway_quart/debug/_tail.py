"""Replay then follow one debug stream: ``XREVRANGE`` for the last N events, then ``XREAD BLOCK`` from there.

Shape of one tail::

    reader task ──(thread: redis-py sync client)── Redis
        │ send_nowait: never waits for the client
        ▼
    bounded buffer (``buffer_size`` items) ──> TailSubscription.__anext__ ──> WebSocket / SSE writer

A slow client cannot make the gateway hold more than ``buffer_size`` events for it: when the buffer is full,
new events are dropped and counted, and one ``{"type": "dropped", "count": n}`` message takes their place as
soon as there is room, exactly where the gap is.

The reader is a trio *system* task (``trio.lowlevel.spawn_system_task``), not a child of the caller's nursery,
so that a subscription can be driven from places that cannot hold a nursery open across ``yield`` (a Quart
streaming response body is an async generator). The subscription owns the task: ``aclose()`` cancels it.

Cancellation is prompt although ``XREAD BLOCK`` is a blocking call in a worker thread: the thread is run with
``abandon_on_cancel=True``, which is safe here because each tail has a client of its own that no other code
touches, and the client is closed by whichever side finishes last (the abandoned thread when its bounded
``block_ms`` wait returns, or ``aclose()`` when no call is in flight). The threads come from a
``CapacityLimiter`` the caller passes in, so tails never starve trio's default thread pool that the registry
uses; an abandoned call keeps its token until its ``XREAD`` returns, at most ``block_ms`` later.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar, final

import redis
import trio
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._events import TailFilters, entry_to_event

__all__ = [
    "DEFAULT_BLOCK_MS",
    "DEFAULT_BUFFER_SIZE",
    "DEFAULT_HEARTBEAT",
    "DEFAULT_LAST_N",
    "DEFAULT_READ_COUNT",
    "DEFAULT_REPLAY_SCAN_LIMIT",
    "MAX_LAST_N",
    "TailSubscription",
    "replay_and_tail",
]

DEFAULT_LAST_N: Final = 200
MAX_LAST_N: Final = 2000
DEFAULT_HEARTBEAT: Final = 15.0
DEFAULT_BLOCK_MS: Final = 1000
DEFAULT_BUFFER_SIZE: Final = 256
"""Live events held for a slow client (at most ~2 MiB at the runner's 8 KiB event cap)."""
DEFAULT_READ_COUNT: Final = 200
DEFAULT_REPLAY_SCAN_LIMIT: Final = 10_000
"""Entries examined (newest first) to find the last N that pass the filters."""
DEFAULT_SOCKET_MARGIN: Final = 5.0
DEFAULT_RETRY_INITIAL_DELAY: Final = 0.1
DEFAULT_RETRY_MAX_DELAY: Final = 5.0

CLIENT_NAME: Final = "ext-debug-tail"
_REPLAY_PAGE: Final = 500
_REDIS_FAILURES: Final = (redis.RedisError, OSError)
_log = logging.getLogger(__name__)

T = TypeVar("T")


class _Closed(Exception):
    pass


@final
class _Connection:
    """A client used by one worker thread at a time, closed by whoever is last (see the module docstring)."""

    def __init__(self, url: str, *, socket_timeout: float) -> None:
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),
            client_name=CLIENT_NAME,  # what CLIENT LIST shows for tails
        )
        self._lock = threading.Lock()
        self._busy = False
        self._closed = False

    async def call(self, fn: Callable[[redis.Redis], T], limiter: trio.CapacityLimiter | None) -> T:
        return await trio.to_thread.run_sync(self._run, fn, abandon_on_cancel=True, limiter=limiter)

    def _run(self, fn: Callable[[redis.Redis], T]) -> T:
        with self._lock:
            if self._closed:
                raise _Closed
            self._busy = True
        try:
            return fn(self._client)
        finally:
            if self._release():
                self._client.close()

    def _release(self) -> bool:
        """Mark the call finished; True when ``close()`` came meanwhile and closing is now this thread's job."""
        with self._lock:
            self._busy = False
            return self._closed

    def close(self) -> None:
        with self._lock:
            self._closed = True
            busy = self._busy
        if not busy:
            self._client.close()


@final
class _Outbox:
    """The bounded buffer's sending side, with the drop accounting."""

    def __init__(self, send: trio.MemorySendChannel[dict[str, Any]]) -> None:
        self._send = send
        self.pending_dropped = 0
        self.total_dropped = 0

    def offer(self, item: dict[str, Any]) -> None:
        """Queue ``item`` if there is room, else count it. Raises ``trio.BrokenResourceError`` once closed."""
        if self.pending_dropped:
            try:
                self._send.send_nowait({"type": "dropped", "count": self.pending_dropped})
            except trio.WouldBlock:
                self._drop()
                return
            self.pending_dropped = 0
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            self._drop()

    async def put(self, item: dict[str, Any]) -> None:
        """Queue ``item``, waiting for room: for the replay, which is bounded and which the client just asked for."""
        await self._send.send(item)

    def _drop(self) -> None:
        self.pending_dropped += 1
        self.total_dropped += 1


def _replay(
    client: redis.Redis, key: str, *, last_n: int, filters: TailFilters, scan_limit: int
) -> tuple[list[dict[str, Any]], str]:
    """The last ``last_n`` matching events, oldest first, and the id to follow from (runs in a thread)."""
    newest: str | None = None
    found: list[dict[str, Any]] = []
    scanned = 0
    upper = "+"
    while scanned < scan_limit:
        count = min(_REPLAY_PAGE, scan_limit - scanned) if last_n else 1
        page = client.xrevrange(key, max=upper, min="-", count=count) or []
        if not page:
            break
        for entry_id, fields in page:
            event = entry_to_event(entry_id or b"", fields or {})
            newest = newest or event["id"]
            scanned += 1
            if len(found) < last_n and filters.matches(event):
                found.append(event)
        if len(found) >= last_n or len(page) < count:
            break
        oldest = page[-1][0]
        upper = "(" + (oldest.decode() if isinstance(oldest, bytes) else str(oldest))
    found.reverse()
    # Nothing there yet: follow from the very beginning, so an entry added meanwhile is not missed ("$" would).
    return found, newest or "0-0"


@final
class TailSubscription:
    """The events of one tail, as an async iterator of dicts; also an async context manager.

    Yields events (see ``_events``), ``{"type": "dropped", "count": n}`` where the buffer overflowed,
    ``{"type": "error", "code": "redis_unavailable"}`` once per Redis outage (the tail keeps retrying and
    resumes from where it was), and ``{"type": "heartbeat", "ts": ms}`` after ``heartbeat`` quiet seconds.
    Iteration ends only if the reader fails unexpectedly (after an ``error`` item with code ``tail_failed``).
    The reader starts at the first ``__anext__`` or ``__aenter__``; always ``aclose()`` (or leave the
    ``async with``) when done.
    """

    def __init__(
        self,
        redis_url: str,
        key: str,
        *,
        filters: TailFilters,
        last_n: int,
        after_id: str | None,
        heartbeat: float,
        block_ms: int,
        buffer_size: int,
        read_count: int,
        scan_limit: int,
        limiter: trio.CapacityLimiter | None,
        retry_initial_delay: float,
        retry_max_delay: float,
    ) -> None:
        self.key = key
        self._redis_url = redis_url
        self._filters = filters
        self._last_n = last_n
        self._after_id = after_id
        self._heartbeat = heartbeat
        self._block_ms = block_ms
        self._read_count = read_count
        self._scan_limit = scan_limit
        self._limiter = limiter
        self._retry_initial = retry_initial_delay
        self._retry_max = retry_max_delay
        send, self._receive = trio.open_memory_channel[dict[str, Any]](buffer_size)
        self._outbox = _Outbox(send)
        self._send = send
        self._scope = trio.CancelScope()
        self._started = False
        self._closed = False
        self.last_id: str | None = after_id
        """The newest entry id the reader has seen (a resume point)."""

    @property
    def dropped(self) -> int:
        """Events dropped so far because the consumer was behind."""
        return self._outbox.total_dropped

    def _start(self) -> None:
        if self._started or self._closed:
            return
        self._started = True
        trio.lowlevel.spawn_system_task(self._reader, name=f"debug-tail {self.key}")

    async def __aenter__(self) -> TailSubscription:
        self._start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> TailSubscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        self._start()
        await trio.lowlevel.checkpoint()
        try:
            try:
                return self._receive.receive_nowait()
            except trio.WouldBlock:
                pass
            if self._outbox.pending_dropped:
                # The buffer has drained and the reader, waiting in XREAD, has nothing to send the notice with:
                # the gap is right here, so report it now rather than behind the next event.
                count, self._outbox.pending_dropped = self._outbox.pending_dropped, 0
                return {"type": "dropped", "count": count}
            with trio.move_on_after(self._heartbeat):
                return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None
        return {"type": "heartbeat", "ts": time.time_ns() // 1_000_000}

    async def aclose(self) -> None:
        """Stop the reader and release its connection. Safe under cancellation: it never waits."""
        self._closed = True
        self._scope.cancel()
        self._receive.close()

    async def _reader(self) -> None:
        conn = _Connection(self._redis_url, socket_timeout=self._block_ms / 1000 + DEFAULT_SOCKET_MARGIN)
        try:
            with self._scope:
                try:
                    await self._follow(conn)
                except trio.BrokenResourceError:
                    pass  # the consumer closed its end
                except Exception:  # a system task must not raise: tell the consumer, then end the iteration
                    _log.exception("debug tail of %s failed", self.key)
                    with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                        self._send.send_nowait({"type": "error", "code": "tail_failed"})
        finally:
            self._send.close()
            conn.close()

    async def _follow(self, conn: _Connection) -> None:
        replayed = self._after_id is not None
        delay = self._retry_initial
        outage = False
        while True:
            try:
                if not replayed:
                    events, self.last_id = await conn.call(self._replay_call, self._limiter)
                    replayed = True
                    for event in events:
                        await self._outbox.put(event)
                batch = await conn.call(self._read_call, self._limiter)
            except _REDIS_FAILURES as exc:
                if not outage:
                    _log.warning("debug tail of %s: Redis unavailable (%s)", self.key, exc)
                    self._outbox.offer({"type": "error", "code": "redis_unavailable"})
                outage = True
                await trio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            outage = False
            delay = self._retry_initial
            for entry_id, fields in batch:
                event = entry_to_event(entry_id, fields or {})
                self.last_id = event["id"]
                if self._filters.matches(event):
                    self._outbox.offer(event)

    def _replay_call(self, client: redis.Redis) -> tuple[list[dict[str, Any]], str]:
        return _replay(client, self.key, last_n=self._last_n, filters=self._filters, scan_limit=self._scan_limit)

    def _read_call(self, client: redis.Redis) -> list[tuple[Any, Any]]:
        last_id = self.last_id or "0-0"
        reply = client.xread({self.key: last_id}, count=self._read_count, block=self._block_ms)
        if not reply:
            return []
        # RESP2 gives [[key, entries]]; RESP3 gives {key: [entries]}.
        streams = reply.items() if isinstance(reply, dict) else reply
        out: list[tuple[Any, Any]] = []
        for _key, entries in streams:
            for entry in entries:
                out.append((entry[0], entry[1]))
        return out


def replay_and_tail(
    redis_url: str,
    key: str,
    *,
    filters: TailFilters | None = None,
    last_n: int = DEFAULT_LAST_N,
    after_id: str | None = None,
    heartbeat: float = DEFAULT_HEARTBEAT,
    block_ms: int = DEFAULT_BLOCK_MS,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    read_count: int = DEFAULT_READ_COUNT,
    scan_limit: int = DEFAULT_REPLAY_SCAN_LIMIT,
    limiter: trio.CapacityLimiter | None = None,
    retry_initial_delay: float = DEFAULT_RETRY_INITIAL_DELAY,
    retry_max_delay: float = DEFAULT_RETRY_MAX_DELAY,
) -> TailSubscription:
    """Follow ``key``: the last ``last_n`` events that pass ``filters``, then new ones as they arrive.

    Use as ``async with replay_and_tail(url, key) as events: async for item in events: ...``.

    Args:
        redis_url: ``redis://…``.
        key: the stream (see :func:`stream_key`); the caller has already checked the tenant owns it.
        filters: what to let through (default: everything).
        last_n: events replayed first (at most ``MAX_LAST_N``; 0 to only follow).
        after_id: resume after this entry id instead of replaying (SSE ``Last-Event-ID``).
        heartbeat: seconds of quiet after which a heartbeat item is yielded.
        block_ms: longest single ``XREAD BLOCK``; bounds how long an abandoned worker thread lingers.
        buffer_size: events held for a slow consumer before dropping.
        read_count: most entries per ``XREAD``.
        scan_limit: most entries examined while replaying with filters.
        limiter: worker threads for this tail's Redis calls (default: trio's global limiter).
        retry_initial_delay: first pause after Redis fails; doubles up to ``retry_max_delay``.
        retry_max_delay: cap of that pause.

    Raises:
        ValueError: a limit out of range.
    """
    if not 0 <= last_n <= MAX_LAST_N:
        raise ValueError(f"last_n must be within 0..{MAX_LAST_N}")
    for name, value in (
        ("heartbeat", heartbeat),
        ("block_ms", block_ms),
        ("buffer_size", buffer_size),
        ("read_count", read_count),
        ("scan_limit", scan_limit),
        ("retry_initial_delay", retry_initial_delay),
        ("retry_max_delay", retry_max_delay),
    ):
        if value <= 0:
            raise ValueError(f"{name} must be positive")
    return TailSubscription(
        redis_url,
        key,
        filters=filters or TailFilters(),
        last_n=last_n,
        after_id=after_id,
        heartbeat=heartbeat,
        block_ms=block_ms,
        buffer_size=buffer_size,
        read_count=read_count,
        scan_limit=scan_limit,
        limiter=limiter,
        retry_initial_delay=retry_initial_delay,
        retry_max_delay=retry_max_delay,
    )
