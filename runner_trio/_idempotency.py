"""Replay of keyed invocations: ``x-idempotency-key`` runs a request once per (tenant, extension, key).

The reference keys its cache by the header alone (so one tenant could read another's result) and never bounds
it. Here the key is scoped by tenant and extension, the table is a bounded LRU whose entries expire after a
TTL, concurrent duplicates wait for the first and share its result, and reusing a key for a different request
is refused instead of answered with the wrong result.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar, final

import trio
from cachetools import TTLCache

__all__ = ["IdempotencyCache", "KeyReused"]

DEFAULT_TTL: Final = 300.0
DEFAULT_MAX_ENTRIES: Final = 10_000
MAX_KEY_LENGTH: Final = 256

T = TypeVar("T")
_Key = tuple[str, str, str]


class KeyReused(Exception):
    """The key was already used for a request with a different fingerprint."""


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
    """Bounded, expiring, single-flight memo of results keyed by (tenant, extension, key).

    Runs in flight are kept apart from finished results: only finished ones count against ``max_entries``
    and expire (``ttl`` after they finished), so a run is never evicted while duplicates wait for it.
    """

    def __init__(self, *, ttl: float = DEFAULT_TTL, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._results: TTLCache[_Key, _Remembered[T]] = TTLCache(
            maxsize=max_entries, ttl=ttl, timer=trio.current_time)
        self._running: dict[_Key, _Running[T]] = {}
        self.replays = 0

    def __len__(self) -> int:
        return len(self._running) + len(self._results)

    async def run(
        self,
        scope: tuple[str, str],
        key: str,
        fingerprint: str,
        execute: Callable[[], Awaitable[tuple[T, bool]]],
    ) -> T:
        """Return the result for ``key``, running ``execute`` only if no live entry exists.

        ``execute`` returns ``(result, remember)``: results that say nothing about the guest (the runner was
        overloaded, the bundle could not be fetched) are not remembered, so a retry gets a fresh attempt.

        Raises:
            KeyReused: the key is live for a request with another fingerprint.
        """
        full_key = (scope[0], scope[1], key[:MAX_KEY_LENGTH])
        while (running := self._running.get(full_key)) is not None:
            if running.fingerprint != fingerprint:
                raise KeyReused(key)
            await running.done.wait()
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
            result, remember = await execute()
            if remember:
                running.remembered = _Remembered(fingerprint, result)
                with contextlib.suppress(ValueError):  # max_entries=0: shared with the waiters, then forgotten
                    self._results[full_key] = running.remembered
            return result
        finally:
            del self._running[full_key]
            running.done.set()
