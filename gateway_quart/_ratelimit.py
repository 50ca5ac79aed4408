"""Token buckets per (tenant, extension): refuse bursts, answer with how long to wait.

:class:`TokenBucketLimiter` keeps the buckets in this process; :class:`FleetRateLimiter` keeps them in Redis,
shared by every gateway of a fleet (``GATEWAY_REDIS_URL``), so N gateways let through what one would. Both
answer the :class:`RateLimiter` protocol that the proxy calls.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Hashable
from typing import Final, Protocol, final

import trio
from cachetools import LRUCache

from ._fleet import FleetState, FleetUnavailable

log = logging.getLogger("gateway_quart")

DEFAULT_MAX_KEYS: Final = 100_000
"""Buckets kept at most; the least recently used go first (a forgotten bucket restarts full)."""


class RateLimiter(Protocol):
    """What the proxy asks before each call."""

    async def take(self, tenant_id: str, extension_id: str) -> int:
        """Take one token of the (tenant, extension) bucket: 0 when allowed, else the seconds to wait (>= 1)."""
        ...


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

    async def take(self, tenant_id: str, extension_id: str) -> int:
        return self.acquire((tenant_id, extension_id))


@final
class FleetRateLimiter:
    """Token buckets in Redis, shared by every gateway (see ``_fleet.py`` for the atomic Lua script).

    When Redis does not answer, the call is limited by ``fallback`` (this process's buckets) instead of
    failing: a Redis outage loosens the limit to one bucket per gateway, it never stops the traffic.
    """

    def __init__(self, fleet: FleetState, *, rate: float, burst: int, fallback: TokenBucketLimiter) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._fleet = fleet
        self._rate = rate
        self._burst = burst
        self._fallback = fallback
        self._fallbacks = 0

    async def take(self, tenant_id: str, extension_id: str) -> int:
        try:
            return await self._fleet.take_token(tenant_id, extension_id, rate=self._rate, burst=self._burst)
        except FleetUnavailable as exc:
            if self._fallbacks == 0:
                log.warning("rate limits fall back to this gateway's buckets: %s", exc)
            self._fallbacks += 1
            return await self._fallback.take(tenant_id, extension_id)

    def statistics(self) -> dict[str, int]:
        return {"fallbacks": self._fallbacks}
