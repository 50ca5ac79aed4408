"""State that every gateway of a fleet shares through Redis (``GATEWAY_REDIS_URL``).

Three things live there, under :data:`DEFAULT_KEY_PREFIX`:

* the rate-limit buckets (``<prefix>bucket:<tenant>:<extension>``, a hash of ``tokens`` and ``ts``), taken by
  one Lua script that Redis runs atomically: refill by the time elapsed on the Redis server's clock (so the
  gateways' clocks do not matter), take a token or say how long to wait;
* the revocation generation (``<prefix>revocations``), a counter that a gateway increments after it revoked
  a token or changed or removed an install. Every gateway reads it before answering from its auth cache and
  drops the cache when it moved, so a credential revoked through one gateway is refused by all of them on
  their next request, without waiting for the cache's TTL;
* the budget counters (``<prefix>usage:<tenant>:<budget>:<period>:<window>``, floats that expire with their
  period): :meth:`FleetState.admit_usage` checks a tenant's counters and counts the invocation in one Lua
  script, :meth:`FleetState.add_usage` adds answered usage in one pipeline (``_budgets.py``).

redis-py's synchronous client runs in trio's worker threads (its asyncio client needs asyncio); it reconnects
by itself on the next command. Failures are :class:`FleetUnavailable`; the callers decide what is safe
(the limiter falls back to its per-process buckets, the auth cache is bypassed).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Final, TypeVar, final

import redis
import trio
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["DEFAULT_KEY_PREFIX", "DEFAULT_SOCKET_TIMEOUT_S", "FleetState", "FleetUnavailable"]

DEFAULT_KEY_PREFIX: Final = "gateway:"
DEFAULT_SOCKET_TIMEOUT_S: Final = 1.0
"""Connect and read timeout of one command: how long a request waits on a Redis that does not answer."""

T = TypeVar("T")

# KEYS[1] the bucket; ARGV[1] rate (tokens/s), ARGV[2] burst, ARGV[3] expiry (ms). Returns the whole seconds to
# wait (0: a token was taken). The bucket's state is written back either way, as the in-process limiter does.
_TAKE: Final = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens = burst
  stamp = now
end
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.max(1, math.ceil((1 - tokens) / rate))
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return wait
"""


# KEYS: one counter per budget. ARGV[1] = n, then per budget i: limit, "1" to count this invocation, expiry (ms),
# seed (a counter not in Redis yet starts there; negative: no seed). Returns {0, "0"} when every counter is under
# its limit (and counts the invocation), else {i, "<used>"}.
_ADMIT: Final = """
local n = tonumber(ARGV[1])
for i = 1, n do
  local seed = tonumber(ARGV[4 * i + 1])
  if seed >= 0 and redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('SET', KEYS[i], tostring(seed), 'PX', ARGV[4 * i])
  end
end
for i = 1, n do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used >= tonumber(ARGV[4 * i - 2]) then
    return {i, tostring(used)}
  end
end
for i = 1, n do
  if ARGV[4 * i - 1] == '1' then
    redis.call('INCRBYFLOAT', KEYS[i], 1)
    redis.call('PEXPIRE', KEYS[i], ARGV[4 * i])
  end
end
return {0, '0'}
"""


class FleetUnavailable(Exception):
    """Redis did not answer (or answered with an error)."""


@final
class FleetState:
    """The fleet's shared state in the Redis at ``url`` (``redis://``, ``rediss://`` or ``unix://``)."""

    def __init__(
        self, url: str, *, key_prefix: str = DEFAULT_KEY_PREFIX, socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S
    ) -> None:
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 0),  # a failed command fails this request; the next one reconnects
        )
        self._url = url
        self._prefix = key_prefix
        self._take = self._client.register_script(_TAKE)
        self._admit = self._client.register_script(_ADMIT)

    @property
    def name(self) -> str:
        """The URL without credentials, for logs."""
        parts = urllib.parse.urlsplit(self._url)
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"

    async def _call(self, work: Callable[[], T]) -> T:
        try:
            return await trio.to_thread.run_sync(work)
        except (redis.RedisError, OSError) as exc:
            raise FleetUnavailable(f"{self.name}: {type(exc).__name__}: {exc}") from exc

    async def take_token(self, tenant_id: str, extension_id: str, *, rate: float, burst: int) -> int:
        """Take one token from the (tenant, extension) bucket: 0, or the whole seconds to wait (>= 1)."""
        key = self._prefix + "bucket:" + ":".join(urllib.parse.quote(part, safe="") for part in (tenant_id,
                                                                                                  extension_id))
        expiry_ms = int((burst / rate + 1) * 1000)  # a bucket left alone that long is full again: forget it
        return int(await self._call(lambda: self._take(keys=[key], args=[repr(rate), burst, expiry_ms])))

    async def revocations(self) -> int:
        """The revocation generation (0 until the first revocation)."""
        raw = await self._call(lambda: self._client.get(self._prefix + "revocations"))
        return 0 if raw is None else int(raw)

    async def revoked(self) -> int:
        """Announce a revocation to every gateway; returns the new generation."""
        return int(await self._call(lambda: self._client.incr(self._prefix + "revocations")))

    def usage_key(self, tenant_id: str, budget: str, period: str, window: int) -> str:
        """The counter of ``budget`` in the ``window``-th ``period`` since the epoch, for ``tenant_id``."""
        return f"{self._prefix}usage:{urllib.parse.quote(tenant_id, safe='')}:{budget}:{period}:{window}"

    async def admit_usage(self, checks: Sequence[tuple[str, float, bool, int, float]]) -> tuple[int, float]:
        """Check budget counters atomically: each ``(key, limit, count_invocation, expiry_ms, seed)``; a counter
        not in Redis yet starts at ``seed`` (the registry's sum for the period; negative: none).

        Returns:
            ``(0, 0.0)`` when all are under their limits (the invocation counters were incremented), else the
            1-based index of the first counter at or over its limit and its value.
        """
        keys = [check[0] for check in checks]
        args: list[str | int] = [len(checks)]
        for _, limit, count, expiry_ms, seed in checks:
            args += [repr(float(limit)), "1" if count else "0", expiry_ms, repr(float(seed))]
        index, used = await self._call(lambda: self._admit(keys=keys, args=args))
        return int(index), float(used)

    async def add_usage(self, increments: Mapping[str, tuple[float, int]]) -> None:
        """Add ``amount`` to each counter ``key`` and set its expiry: ``{key: (amount, expiry_ms)}``."""

        def work() -> None:
            pipe = self._client.pipeline(transaction=False)
            for key, (amount, expiry_ms) in increments.items():
                pipe.incrbyfloat(key, amount)
                pipe.pexpire(key, expiry_ms)
            pipe.execute()

        await self._call(work)

    async def aclose(self) -> None:
        await trio.to_thread.run_sync(self._client.close)
