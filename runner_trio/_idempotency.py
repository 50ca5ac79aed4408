"""Replay of keyed invocations: ``x-idempotency-key`` runs a request once per (tenant, extension, key).

The reference keys its cache by the header alone (so one tenant could read another's result) and never bounds
it. Here the key is scoped by tenant and extension, the table is a bounded LRU whose entries expire after a
TTL, concurrent duplicates wait for the first and share its result, and reusing a key for a different request
is refused instead of answered with the wrong result.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar, final

import trio

__all__ = ["IdempotencyCache", "KeyReused"]

DEFAULT_TTL: Final = 300.0
DEFAULT_MAX_ENTRIES: Final = 10_000
MAX_KEY_LENGTH: Final = 256

T = TypeVar("T")


class KeyReused(Exception):
    """The key was already used for a request with a different fingerprint."""


@dataclass
class _Entry(Generic[T]):
    fingerprint: str
    done: trio.Event = field(default_factory=trio.Event)
    result: T | None = None
    expires: float = float("inf")
    failed: bool = False


@final
class IdempotencyCache(Generic[T]):
    """Bounded, expiring, single-flight memo of results keyed by (tenant, extension, key)."""

    def __init__(self, *, ttl: float = DEFAULT_TTL, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str, str], _Entry[T]] = OrderedDict()
        self.replays = 0

    def __len__(self) -> int:
        return len(self._entries)

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
        now = trio.current_time()
        entry = self._entries.get(full_key)
        if entry is not None and entry.done.is_set() and (entry.failed or entry.expires <= now):
            del self._entries[full_key]
            entry = None
        if entry is not None:
            if entry.fingerprint != fingerprint:
                raise KeyReused(key)
            self._entries.move_to_end(full_key)
            await entry.done.wait()
            if not entry.failed:
                self.replays += 1
                assert entry.result is not None
                return entry.result
            # The first attempt ended without a result worth sharing: this caller runs it afresh.
            return await self.run(scope, key, fingerprint, execute)

        entry = _Entry(fingerprint)
        self._entries[full_key] = entry
        self._trim()
        remember = False
        try:
            result, remember = await execute()
            if remember:
                entry.result = result
                entry.expires = trio.current_time() + self._ttl
            return result
        finally:
            if not remember:
                entry.failed = True
                if self._entries.get(full_key) is entry:
                    del self._entries[full_key]
            entry.done.set()

    def _trim(self) -> None:
        # Evict the oldest finished entries; in-flight ones are never evicted (their waiters hold them anyway).
        while len(self._entries) > self._max_entries:
            for k, e in self._entries.items():
                if e.done.is_set():
                    del self._entries[k]
                    break
            else:
                return
