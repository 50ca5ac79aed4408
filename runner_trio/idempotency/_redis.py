"""Records in Redis: shared by every runner that points at the same server.

A record is one string key, ``<prefix><tenant>:<extension>:<key>`` (each part percent-encoded), holding JSON:
``{"fp", "owner", "lease_until"}`` while running, ``{"fp", "result"}`` once done. The claim is
``SET key value NX PX ttl``; storing the result and releasing a claim are small Lua scripts that first check
the claim is still the caller's. redis-py's synchronous client runs in worker threads (its asyncio client
needs asyncio); it reconnects by itself on the next command, so requests resume as soon as Redis is back.

Redis must persist (AOF or RDB) for a key to survive a Redis restart: an empty Redis forgets every claim, and
a retry then runs the guest again.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Callable
from typing import Any, Final, TypeVar, final

import redis
import trio
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._errors import StoreUnavailable
from ._records import Claimed, Done, Held, RecordKey

__all__ = ["DEFAULT_KEY_PREFIX", "DEFAULT_SOCKET_TIMEOUT", "RedisRecords"]

DEFAULT_KEY_PREFIX: Final = "runner-idempotency:"
DEFAULT_SOCKET_TIMEOUT: Final = 2.0
"""Connect and read timeout of one command: how long a keyed request waits on a Redis that does not answer."""
_CLAIM_ATTEMPTS: Final = 3  # a record may expire between the refused SET and the GET that reads it

T = TypeVar("T")

# KEYS[1] the record; ARGV[1] owner, ARGV[2] the done record, ARGV[3] ttl in ms.
_COMPLETE: Final = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local record = cjson.decode(current)
if record['owner'] ~= ARGV[1] or record['result'] ~= nil then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""
# KEYS[1] the record; ARGV[1] owner.
_RELEASE: Final = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local record = cjson.decode(current)
if record['owner'] ~= ARGV[1] or record['result'] ~= nil then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


@final
class RedisRecords:
    """Idempotency records in the Redis at ``url`` (``redis://``, ``rediss://`` or ``unix://``)."""

    def __init__(
        self, url: str, *, key_prefix: str = DEFAULT_KEY_PREFIX, socket_timeout: float = DEFAULT_SOCKET_TIMEOUT
    ) -> None:
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),  # a failed command fails the request; the next one reconnects
        )
        self._url = url
        self._prefix = key_prefix
        self._complete = self._client.register_script(_COMPLETE)
        self._release = self._client.register_script(_RELEASE)

    @property
    def name(self) -> str:
        parts = urllib.parse.urlsplit(self._url)
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"  # no password

    def _key(self, key: RecordKey) -> str:
        return self._prefix + ":".join(urllib.parse.quote(part, safe="") for part in key)

    async def _call(self, work: Callable[[], T]) -> T:
        try:
            return await trio.to_thread.run_sync(work)
        except (redis.RedisError, OSError) as exc:
            raise StoreUnavailable(f"{self.name}: {exc}") from exc

    async def claim(
        self, key: RecordKey, fingerprint: str, owner: str, *, lease_until: float, ttl: float
    ) -> Claimed | Held | Done:
        name = self._key(key)
        value = json.dumps({"fp": fingerprint, "owner": owner, "lease_until": lease_until})
        for _ in range(_CLAIM_ATTEMPTS):
            if await self._call(lambda: self._client.set(name, value, nx=True, px=_ms(ttl))):
                return Claimed()
            found = await self.get(key)
            if isinstance(found, Held) and found.owner == owner:
                return Claimed()  # our SET applied but its answer was lost
            if found is not None:
                return found
        raise StoreUnavailable(f"{self.name}: the record of the key kept expiring while being claimed")

    async def get(self, key: RecordKey) -> Held | Done | None:
        raw = await self._call(lambda: self._client.get(self._key(key)))
        return None if raw is None else _parse(raw)

    async def complete(self, key: RecordKey, owner: str, fingerprint: str, result: bytes, *, ttl: float) -> bool:
        done = json.dumps({"fp": fingerprint, "owner": owner, "result": base64.b64encode(result).decode()})
        name = self._key(key)
        return bool(await self._call(lambda: self._complete(keys=[name], args=[owner, done, _ms(ttl)])))

    async def release(self, key: RecordKey, owner: str) -> None:
        name = self._key(key)
        await self._call(lambda: self._release(keys=[name], args=[owner]))

    async def aclose(self) -> None:
        await trio.to_thread.run_sync(self._client.close)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _parse(raw: Any) -> Held | Done:
    record = json.loads(raw)
    if "result" in record:
        return Done(record["fp"], base64.b64decode(record["result"]))
    return Held(record["fp"], record["owner"], float(record["lease_until"]))
