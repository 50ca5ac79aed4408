"""In-memory LRU of compiled objects, bounded by count and approximate bytes, with single-flight creation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterator
from typing import Final, Generic, TypeVar, final

from cachetools import LRUCache

from ._flight import SingleFlight
from ._stats import CompiledCacheStats

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_MAX_COMPILED_ENTRIES: Final = 64
"""Default bound on the number of compiled objects kept in memory."""
DEFAULT_MAX_COMPILED_BYTES: Final = 2 * 1024**3
"""Default bound on their approximate size (a compiled JS/Python guest is ~35 MB of machine code)."""


class _SizedLru(LRUCache[K, tuple[V, int]]):
    """cachetools' LRU bounded by the sizes the caller gave (``(value, size)`` items), counting its evictions."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(maxsize=max_bytes, getsizeof=_item_size)
        self.evictions = 0

    def popitem(self) -> tuple[K, tuple[V, int]]:
        # cachetools calls popitem for every eviction it makes room with (its documented hook).
        item = super().popitem()
        self.evictions += 1
        return item


def _item_size(item: tuple[object, int]) -> int:
    return item[1]


@final
class CompiledCache(Generic[K, V]):
    """Keeps the most recently used compiled objects; ``get_or_create`` runs one ``create`` per missing key.

    Sizes are what the caller says (e.g. the serialized artifact's length); an object larger than
    ``max_bytes`` is returned to its callers but not kept.

    Args:
        max_entries: at most this many objects are kept.
        max_bytes: the sum of their sizes stays at or under this.
    """

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_COMPILED_ENTRIES,
        max_bytes: int = DEFAULT_MAX_COMPILED_BYTES,
    ) -> None:
        if max_entries < 0 or max_bytes < 0:
            raise ValueError("max_entries and max_bytes must be >= 0")
        self._max_entries = max_entries
        # Bounded by bytes here, by count in put(). Its iteration order is insertion order, so a hit re-inserts
        # the item to keep iteration least recently used first.
        self._items: _SizedLru[K, V] = _SizedLru(max_bytes)
        self._flights: SingleFlight[K, V] = SingleFlight()
        self._hits = self._misses = self._creates = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[K]:
        """The keys, least recently used first (a snapshot: the cache may change while iterating)."""
        return iter(list(self._items))

    def get(self, key: K) -> V | None:
        """The cached object (marked most recently used), or None. Does not count as a hit or a miss."""
        item = self._touch(key)
        return None if item is None else item[0]

    def hit(self, key: K) -> V | None:
        """The cached object (marked most recently used, counted as a hit), or None (not counted: a caller that
        then calls :meth:`get_or_create` has its miss counted there). The hot path's lookup: no coroutine."""
        item = self._touch(key)
        if item is None:
            return None
        self._hits += 1
        return item[0]

    def _touch(self, key: K) -> tuple[V, int] | None:
        item = self._items.pop(key, None)
        if item is not None:
            self._items[key] = item  # cannot evict: the same size was there a moment ago
        return item

    def put(self, key: K, value: V, size: int) -> None:
        """Insert or replace an object, then evict least recently used ones until within bounds."""
        if size < 0:
            raise ValueError("size must be >= 0")
        self.discard(key)
        if size > self._items.maxsize or self._max_entries == 0:
            return
        self._items[key] = (value, size)  # evicts least recently used items until the bytes fit
        while len(self._items) > self._max_entries:
            self._items.popitem()

    def discard(self, key: K) -> bool:
        return self._items.pop(key, None) is not None

    async def get_or_create(self, key: K, create: Callable[[], Awaitable[tuple[V, int]]]) -> V:
        """Return the cached object, or run ``create()`` -> ``(value, size)`` once for all concurrent callers.

        A failing ``create`` raises its error in every caller waiting on it and caches nothing.
        """
        item = self._touch(key)
        if item is not None:
            self._hits += 1
            return item[0]
        self._misses += 1

        async def work() -> V:
            # Another flight may have filled it between this caller's miss and its turn to lead.
            cached = self._touch(key)
            if cached is not None:
                return cached[0]
            self._creates += 1
            created, size = await create()
            self.put(key, created, size)
            return created

        value, _ = await self._flights.run(key, work)
        return value

    def statistics(self) -> CompiledCacheStats:
        return CompiledCacheStats(
            hits=self._hits,
            misses=self._misses,
            creates=self._creates,
            evictions=self._items.evictions,
            entries=len(self._items),
            bytes=int(self._items.currsize),
        )
