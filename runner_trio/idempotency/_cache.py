"""Replay of keyed invocations: ``x-idempotency-key`` runs a request at most once per (tenant, extension, key).

Two layers. In this process, runs in flight are a single flight (duplicates wait on an event, no polling) and
finished results a bounded LRU whose entries expire: the fast path, and the whole story when no shared store
is given. With a ``RecordStore`` (SQLite file, Redis), the process that gets a key first *claims* it in the
store before the guest runs and stores the result afterwards, so a retry on another runner, or after a
restart, replays the result instead of running the guest again.

How a claim without a result is decided (at most once beats availability): a claim carries a lease, the
request's own deadline plus ``claim_margin``. While the lease runs, other requests with the key wait for the
result, each up to its own deadline, then answer ``KeyInProgress``. After it, the claim is *abandoned*: its
runner died or lost the store mid-run, and whether the guest ran is unknown, so the key answers
``KeyAbandoned`` until its TTL ends and is never run again; it is never taken over. A claim is released (the
next request runs afresh) only when its run answered something that says the guest did not run (the
``remember`` flag of ``execute``); a run that raised or was cancelled leaves its claim, since the guest may
have started.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar, final

import trio
from cachetools import TTLCache

from ._errors import KeyAbandoned, KeyInProgress, KeyReused, StoreUnavailable
from ._records import Claimed, Done, Held, RecordKey, RecordStore

__all__ = [
    "DEFAULT_CLAIM_MARGIN",
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MEMO_TTL",
    "DEFAULT_TTL",
    "MAX_KEY_LENGTH",
    "Codec",
    "IdempotencyCache",
]

log = logging.getLogger("runner_trio.idempotency")

DEFAULT_TTL: Final = 300.0
DEFAULT_MAX_ENTRIES: Final = 10_000
DEFAULT_MEMO_TTL: Final = 300.0
"""With a shared store, how long this process also keeps a result in memory (the store keeps it for ``ttl``)."""
DEFAULT_CLAIM_MARGIN: Final = 60.0
"""Added to a request's deadline to make its claim's lease: covers queueing, loading and clock skew."""
MAX_KEY_LENGTH: Final = 256
_POLL_FIRST: Final = 0.02
_POLL_MAX: Final = 0.5

T = TypeVar("T")


@dataclass(frozen=True)
class Codec(Generic[T]):
    """How results travel through the shared store."""

    encode: Callable[[T], bytes]
    decode: Callable[[bytes], T]


@dataclass(frozen=True)
class _Remembered(Generic[T]):
    fingerprint: str
    result: T


@dataclass
class _Running(Generic[T]):
    fingerprint: str
    done: trio.Event = field(default_factory=trio.Event)
    remembered: _Remembered[T] | None = None


@final
class IdempotencyCache(Generic[T]):
    """Single-flight, expiring memo of results keyed by (tenant, extension, key), optionally shared.

    Args:
        ttl: how long a result is replayed (in the store; in memory too when there is no store).
        max_entries: finished results kept in memory (runs in flight never count and are never evicted).
        records: the shared store; ``None`` keeps everything in this process.
        codec: how results are written to ``records`` (required with it).
        memo_ttl: with ``records``, how long results also stay in memory (at most ``ttl``).
        claim_margin: with ``records``, added to a request's deadline to give its claim's lease.
    """

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        records: RecordStore | None = None,
        codec: Codec[T] | None = None,
        memo_ttl: float = DEFAULT_MEMO_TTL,
        claim_margin: float = DEFAULT_CLAIM_MARGIN,
    ) -> None:
        if records is not None and codec is None:
            raise ValueError("a codec is required with a record store")
        self._ttl = ttl
        self._records = records
        self._codec = codec
        self._claim_margin = claim_margin
        self._results: TTLCache[RecordKey, _Remembered[T]] = TTLCache(
            maxsize=max_entries, ttl=ttl if records is None else min(ttl, memo_ttl), timer=trio.current_time)
        self._running: dict[RecordKey, _Running[T]] = {}
        self._owner_prefix = f"{socket.gethostname()}/{os.getpid()}/"
        self.replays = 0

    def __len__(self) -> int:
        return len(self._running) + len(self._results)

    async def run(
        self,
        scope: tuple[str, str],
        key: str,
        fingerprint: str,
        execute: Callable[[], Awaitable[tuple[T, bool]]],
        *,
        deadline: float | None = None,
    ) -> T:
        """Return the result for ``key``, running ``execute`` only if no live entry exists.

        ``execute`` returns ``(result, remember)``: results that say nothing about the guest (the runner was
        overloaded, the bundle could not be fetched) are not remembered, so a retry gets a fresh attempt.

        Args:
            deadline: seconds this request may take, waiting for a duplicate included (``None``: no bound).

        Raises:
            KeyReused: the key is live for a request with another fingerprint.
            KeyInProgress: the key's first request was still running when ``deadline`` passed.
            KeyAbandoned: the key's claim in the shared store outlived its lease without a result.
            StoreUnavailable: the shared store failed before the guest ran.
        """
        full_key = (scope[0], scope[1], key[:MAX_KEY_LENGTH])
        wait_until = math.inf if deadline is None else trio.current_time() + deadline
        while (running := self._running.get(full_key)) is not None:
            if running.fingerprint != fingerprint:
                raise KeyReused(key)
            with trio.move_on_at(wait_until):
                await running.done.wait()
            if not running.done.is_set():
                raise KeyInProgress(key)
            if running.remembered is not None:
                self.replays += 1
                return running.remembered.result
            # The first attempt ended without a result worth sharing: this caller may run it afresh.
        remembered = self._results.get(full_key)  # a hit makes it the most recently used
        if remembered is not None:
            if remembered.fingerprint != fingerprint:
                raise KeyReused(key)
            self.replays += 1
            return remembered.result

        running = _Running(fingerprint)
        self._running[full_key] = running
        try:
            if self._records is None:
                result, remember = await execute()
                replayed = False
            else:
                result, remember, replayed = await self._shared(full_key, fingerprint, execute, wait_until, deadline)
            if remember:
                running.remembered = _Remembered(fingerprint, result)
                with contextlib.suppress(ValueError):  # max_entries=0: shared with the waiters, then forgotten
                    self._results[full_key] = running.remembered
            if replayed:
                self.replays += 1
            return result
        finally:
            del self._running[full_key]
            running.done.set()

    async def _shared(
        self,
        key: RecordKey,
        fingerprint: str,
        execute: Callable[[], Awaitable[tuple[T, bool]]],
        wait_until: float,
        deadline: float | None,
    ) -> tuple[T, bool, bool]:
        """``(result, remember, replayed)`` through the shared store."""
        records, codec = self._records, self._codec
        assert records is not None
        assert codec is not None
        owner = self._owner_prefix + uuid.uuid4().hex[:16]
        lease = (deadline if deadline is not None else self._ttl) + self._claim_margin
        while True:
            found = await records.claim(key, fingerprint, owner, lease_until=time.time() + lease, ttl=self._ttl)
            if isinstance(found, Claimed):
                break
            done = await self._await_result(key, fingerprint, found, wait_until)
            if done is not None:
                return codec.decode(done.result), True, True
            # The holder released its claim (its answer said nothing about the guest): claim it afresh.

        # Cancellation or an exception below leaves the claim in place: the guest may have started.
        result, remember = await execute()
        # The guest has run: record that even if this request is being cancelled (the store's own timeouts
        # bound the write), or a retry would find an abandoned claim instead of the result.
        with trio.CancelScope(shield=True):
            await self._record(records, key, owner, fingerprint, codec.encode(result) if remember else None)
        return result, remember, False

    async def _record(
        self, records: RecordStore, key: RecordKey, owner: str, fingerprint: str, result: bytes | None
    ) -> None:
        try:
            if result is not None:
                if not await records.complete(key, owner, fingerprint, result, ttl=self._ttl):
                    log.error("idempotency: the claim of %s was gone when its result was stored", key)
            else:
                await records.release(key, owner)
        except StoreUnavailable as exc:
            # The caller still gets its answer; a retry on another runner finds the claim and, after its lease,
            # answers KeyAbandoned rather than running the guest twice.
            log.warning("idempotency: could not record the outcome of %s: %s", key, exc)

    async def _await_result(
        self, key: RecordKey, fingerprint: str, found: Held | Done, wait_until: float
    ) -> Done | None:
        """Wait for another holder's result: ``Done``, or ``None`` once its claim is released."""
        assert self._records is not None
        delay = _POLL_FIRST
        while True:
            if found.fingerprint != fingerprint:
                raise KeyReused(key[2])
            if isinstance(found, Done):
                return found
            if time.time() >= found.lease_until:
                raise KeyAbandoned(key[2])
            now = trio.current_time()
            if now >= wait_until:
                raise KeyInProgress(key[2])
            await trio.sleep(min(delay, wait_until - now))
            delay = min(delay * 2, _POLL_MAX)
            again = await self._records.get(key)
            if again is None:
                return None
            found = again
