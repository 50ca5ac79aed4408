"""Token buckets per (tenant, extension): refuse bursts, answer with how long to wait."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Hashable
from typing import Final, final

import trio
from cachetools import LRUCache

DEFAULT_MAX_KEYS: Final = 100_000
"""Buckets kept at most; the least recently used go first (a forgotten bucket restarts full)."""


@final
class TokenBucketLimiter:
    """A token bucket per key: ``burst`` tokens, refilled at ``rate`` per second.

    Args:
        rate: tokens added per second.
        burst: bucket size (the most calls let through at once).
        max_keys: buckets kept in memory.
        clock: seconds from an arbitrary origin; trio's clock by default, so tests can use a virtual one.
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        # (tokens, stamp) per key; a lookup or an update makes the key the most recently used.
        self._buckets: LRUCache[Hashable, tuple[float, float]] = LRUCache(maxsize=max_keys)

    def acquire(self, key: Hashable) -> int:
        """Take one token for ``key``.

        Returns:
            0 when allowed; otherwise the whole seconds to wait before a token is available (>= 1).
        """
        now = self._clock()
        tokens, stamp = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - stamp) * self._rate)
        if tokens >= 1.0:
            self._store(key, tokens - 1.0, now)
            return 0
        self._store(key, tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self._rate))

    def _store(self, key: Hashable, tokens: float, now: float) -> None:
        with contextlib.suppress(ValueError):  # max_keys=0: every bucket is forgotten (restarts full)
            self._buckets[key] = (tokens, now)

    def statistics(self) -> dict[str, int]:
        return {"buckets": len(self._buckets)}
