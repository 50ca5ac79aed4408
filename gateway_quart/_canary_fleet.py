"""The fleet's canary counts in Redis (``GATEWAY_REDIS_URL``): every gateway adds what it routed, all judge the sum.

Per canary and arm, under ``<prefix>canary:<id>:<arm>``: a hash of ``requests``, ``errors``, ``timeouts``, and a
list ``…:lat`` of the latest latency samples (capped at ``MAX_LATENCY_SAMPLES``). A gateway's evaluator adds its
new observations once per tick (one pipeline; nothing on the request path), then reads the totals. Keys expire
a week after the last write, long after any window.

redis-py's synchronous client in trio's worker threads, as ``_fleet.py``; a failure raises and the evaluator
falls back to this gateway's own counts for that tick, and the observations it could not add wait for the next.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, final

import redis
import trio
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._canary import ARM_NEW, ARM_OLD, MAX_LATENCY_SAMPLES, ArmStats
from ._fleet import DEFAULT_KEY_PREFIX, DEFAULT_SOCKET_TIMEOUT_S

__all__ = ["COUNTS_TTL_S", "FleetCanaryStats"]

COUNTS_TTL_S: Final = 7 * 24 * 3600


@final
class FleetCanaryStats:
    """Canary arm counts shared by the gateways through the Redis at ``url``."""

    def __init__(self, url: str, *, key_prefix: str = DEFAULT_KEY_PREFIX,
                 socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=socket_timeout_s,
                                            socket_connect_timeout=socket_timeout_s, retry=Retry(NoBackoff(), 0))
        self._prefix = key_prefix + "canary:"

    def _key(self, canary_id: str, arm: str) -> str:
        return f"{self._prefix}{canary_id}:{arm}"

    async def add(self, pending: Mapping[tuple[str, str], ArmStats]) -> None:
        """Add this gateway's observations since the last call to the fleet's totals."""
        if not pending:
            return

        def work() -> None:
            pipe = self._client.pipeline(transaction=False)
            for (canary_id, arm), stats in pending.items():
                key = self._key(canary_id, arm)
                pipe.hincrby(key, "requests", stats.requests)
                pipe.hincrby(key, "errors", stats.errors)
                pipe.hincrby(key, "timeouts", stats.timeouts)
                pipe.expire(key, COUNTS_TTL_S)
                if stats.latencies:
                    pipe.rpush(key + ":lat", *(f"{ms:.3f}" for ms in stats.latencies))
                    pipe.ltrim(key + ":lat", -MAX_LATENCY_SAMPLES, -1)
                    pipe.expire(key + ":lat", COUNTS_TTL_S)
            pipe.execute()

        await trio.to_thread.run_sync(work)

    async def arms(self, canary_id: str) -> dict[str, ArmStats]:
        """The fleet's totals of both arms."""

        def work() -> dict[str, ArmStats]:
            pipe = self._client.pipeline(transaction=False)
            for arm in (ARM_OLD, ARM_NEW):
                pipe.hmget(self._key(canary_id, arm), "requests", "errors", "timeouts")
                pipe.lrange(self._key(canary_id, arm) + ":lat", 0, -1)
            answers = pipe.execute()
            out: dict[str, ArmStats] = {}
            for index, arm in enumerate((ARM_OLD, ARM_NEW)):
                counts, latencies = answers[2 * index], answers[2 * index + 1]
                requests, errors, timeouts = (int(value or 0) for value in counts)
                stats = ArmStats()
                stats.merge(requests, errors, timeouts, [float(ms) for ms in latencies])
                out[arm] = stats
            return out

        return await trio.to_thread.run_sync(work)

    async def aclose(self) -> None:
        await trio.to_thread.run_sync(self._client.close)
