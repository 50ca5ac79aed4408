"""Counters the runner exports as Prometheus metrics."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CompiledCacheStats:
    """Statistics of a `CompiledCache` (in-memory compiled objects)."""

    hits: int
    misses: int
    creates: int
    evictions: int
    entries: int
    bytes: int


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Statistics of the disk cache, plus the compiled/artifact counters when taken from an `ArtifactCache`.

    Attributes:
        hits: ``entry()`` calls that found the entry cached.
        misses: ``entry()`` calls that did not (the leader of a fill and every waiter on it).
        fills: fill callables run, i.e. bundle fetches (50 concurrent misses on one hash -> 1).
        evictions: entries removed to stay under ``max_bytes``.
        corrupted: entries dropped because a file was missing or failed its sha256 check.
        disk_full: writes that failed because the cache's filesystem was full (ENOSPC/EDQUOT), each try.
        bytes: bytes of all entries this process knows, from their index files.
        entries: entries this process knows.
        pinned: entries pinned right now.
        memory_hits: compiled objects served from memory (`CompiledCache` hits).
        builds: compiles (``build()`` calls).
        precompiled_loads: artifacts deserialized instead of compiled (local file or shared store).
        shared_loads: of ``precompiled_loads``, those whose bytes came from the shared store.
        stale_artifacts: local artifacts that failed to deserialize (another engine config) and were deleted.
        rejected_artifacts: shared artifacts that failed HMAC/format checks and were never deserialized.
        shared_errors: shared-store reads or writes that failed for another reason than "not found".
    """

    hits: int = 0
    misses: int = 0
    fills: int = 0
    evictions: int = 0
    corrupted: int = 0
    disk_full: int = 0
    bytes: int = 0
    entries: int = 0
    pinned: int = 0
    memory_hits: int = 0
    builds: int = 0
    precompiled_loads: int = 0
    shared_loads: int = 0
    stale_artifacts: int = 0
    rejected_artifacts: int = 0
    shared_errors: int = 0
