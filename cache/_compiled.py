"""In-memory LRU of compiled objects, bounded by count and approximate bytes, with single-flight creation."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterator
from typing import Final, Generic, TypeVar, final

from ._flight import SingleFlight
from ._stats import CompiledCacheStats

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_MAX_COMPILED_ENTRIES: Final = 64
"""Default bound on the number of compiled objects kept in memory."""
DEFAULT_MAX_COMPILED_BYTES: Final = 2 * 1024**3
"""Default bound on their approximate size (a compiled JS/Python guest is ~35 MB of machine code)."""


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
        self._max_bytes = max_bytes
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()  # least recently used first
        self._bytes = 0
        self._flights: SingleFlight[K, V] = SingleFlight()
        self._hits = self._misses = self._creates = self._evictions = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[K]:
        """The keys, least recently used first (a snapshot: the cache may change while iterating)."""
        return iter(list(self._items))

    def get(self, key: K) -> V | None:
        """The cached object (marked most recently used), or None. Does not count as a hit or a miss."""
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: K, value: V, size: int) -> None:
        """Insert or replace an object, then evict least recently used ones until within bounds."""
        if size < 0:
            raise ValueError("size must be >= 0")
        self.discard(key)
        if size > self._max_bytes or self._max_entries == 0:
            return
        self._items[key] = (value, size)
        self._bytes += size
        while len(self._items) > self._max_entries or self._bytes > self._max_bytes:
            _, (_, old_size) = self._items.popitem(last=False)
            self._bytes -= old_size
            self._evictions += 1

    def discard(self, key: K) -> bool:
        item = self._items.pop(key, None)
        if item is None:
            return False
        self._bytes -= item[1]
        return True

    async def get_or_create(self, key: K, create: Callable[[], Awaitable[tuple[V, int]]]) -> V:
        """Return the cached object, or run ``create()`` -> ``(value, size)`` once for all concurrent callers.

        A failing ``create`` raises its error in every caller waiting on it and caches nothing.
        """
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
            self._hits += 1
            return item[0]
        self._misses += 1

        async def work() -> V:
            # Another flight may have filled it between this caller's miss and its turn to lead.
            cached = self._items.get(key)
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
            evictions=self._evictions,
            entries=len(self._items),
            bytes=self._bytes,
        )
