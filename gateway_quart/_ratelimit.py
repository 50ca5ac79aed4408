"""Token buckets per (tenant, extension): refuse bursts, answer with how long to wait."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final, final

import trio

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
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def acquire(self, key: Hashable) -> int:
        """Take one token for ``key``.

        Returns:
            0 when allowed; otherwise the whole seconds to wait before a token is available (>= 1).
        """
        now = self._clock()
        tokens, stamp = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - stamp) * self._rate)
        if tokens >= 1.0:
            self._store(key, tokens - 1.0, now)
            return 0
        self._store(key, tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self._rate))

    def _store(self, key: Hashable, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    def statistics(self) -> dict[str, int]:
        return {"buckets": len(self._buckets)}
