"""State that every gateway of a fleet shares through Redis (``GATEWAY_REDIS_URL``).

Two things live there, under :data:`DEFAULT_KEY_PREFIX`:

* the rate-limit buckets (``<prefix>bucket:<tenant>:<extension>``, a hash of ``tokens`` and ``ts``), taken by
  one Lua script that Redis runs atomically: refill by the time elapsed on the Redis server's clock (so the
  gateways' clocks do not matter), take a token or say how long to wait;
* the revocation generation (``<prefix>revocations``), a counter that a gateway increments after it revoked
  a token or changed or removed an install. Every gateway reads it before answering from its auth cache and
  drops the cache when it moved, so a credential revoked through one gateway is refused by all of them on
  their next request, without waiting for the cache's TTL.

redis-py's synchronous client runs in trio's worker threads (its asyncio client needs asyncio); it reconnects
by itself on the next command. Failures are :class:`FleetUnavailable`; the callers decide what is safe
(the limiter falls back to its per-process buckets, the auth cache is bypassed).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
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

    async def aclose(self) -> None:
        await trio.to_thread.run_sync(self._client.close)
