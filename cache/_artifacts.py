"""Compiled components: memory, then this runner's precompiled file, then the shared store, then a compile."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Generic, TypeVar, final

import trio

from ._compiled import CompiledCache
from ._disk import DiskCache
from ._entry import CacheEntry
from ._errors import CacheError, InvalidKey
from ._keys import artifact_relpath, validate_hex, validate_target
from ._shared import SharedArtifacts
from ._stats import CacheStats

log = logging.getLogger(__name__)

V = TypeVar("V")


@final
class ArtifactCache(Generic[V]):
    """Loads a compiled object per ``(content hash, target)`` the cheapest way it can, building it at most once.

    Order: the in-memory `CompiledCache`; ``<root>/<hex>/precompiled/<target>.cwasm`` (verified against
    index.json, then ``deserialize_file``; a failure means another engine config, so the file is deleted and
    counted); the `SharedArtifacts` store when configured (HMAC-verified before anything is deserialized);
    finally ``build()``, whose result is serialized into the local entry and, when configured, the shared
    store. Concurrent calls for one ``(hex, target)`` share one run of all of that, in this process (the
    compiled cache's single flight) and among the processes sharing the disk cache (a file lock).

    Only files this cache wrote are ever deserialized: fills never populate ``precompiled/``.

    Args:
        disk: the disk cache holding the entries.
        compiled: the in-memory LRU (a default-sized one when omitted).
        shared: the shared artifact store, or None when ``RUNNER_PRECOMPILE_KEY`` is not set.
    """

    def __init__(
        self,
        disk: DiskCache,
        *,
        compiled: CompiledCache[tuple[str, str], V] | None = None,
        shared: SharedArtifacts | None = None,
    ) -> None:
        self._disk = disk
        self._compiled: CompiledCache[tuple[str, str], V] = compiled if compiled is not None else CompiledCache()
        self._shared = shared
        self._builds = self._loads = self._shared_loads = self._stale = 0

    @property
    def compiled(self) -> CompiledCache[tuple[str, str], V]:
        return self._compiled

    async def load_or_build(
        self,
        hex_digest: str,
        target: str,
        *,
        build: Callable[[], Awaitable[V]],
        serialize: Callable[[V], bytes | bytearray],
        deserialize_file: Callable[[Path], V],
        entry: CacheEntry | None = None,
    ) -> V:
        """Return the compiled object for ``(hex_digest, target)``.

        Args:
            hex_digest: the bundle's content hash.
            target: names the engine the artifact is for (wasmtime version, engine-config fingerprint,
                platform); a file name component, ``[A-Za-z0-9._-]+``.
            build: compiles from source (runs at most once per key among concurrent callers).
            serialize: turns a built object into artifact bytes (run in a worker thread).
            deserialize_file: loads an artifact file (run in a worker thread); raising means "not for this
                engine".
            entry: the pinned disk entry of ``hex_digest`` if the caller holds one; otherwise the entry this
                process has cached, if any, is used.

        Raises:
            InvalidKey: malformed hash or target, or ``entry`` belongs to another hash.
            Exception: whatever ``build`` raises.
        """
        validate_hex(hex_digest)
        validate_target(target)
        if entry is not None and entry.hex != hex_digest:
            raise InvalidKey(f"entry {entry.hex} given for {hex_digest}")

        async def create() -> tuple[V, int]:
            return await self._produce(hex_digest, target, build, serialize, deserialize_file, entry)

        return await self._compiled.get_or_create((hex_digest, target), create)

    def forget(self, hex_digest: str) -> int:
        """Drop the in-memory objects of a content hash (all targets); return how many went."""
        keys = [key for key in self._compiled if key[0] == hex_digest]
        for key in keys:
            self._compiled.discard(key)
        return len(keys)

    def statistics(self) -> CacheStats:
        disk = self._disk.statistics()
        shared = self._shared
        return CacheStats(
            hits=disk.hits,
            misses=disk.misses,
            fills=disk.fills,
            evictions=disk.evictions,
            corrupted=disk.corrupted,
            disk_full=disk.disk_full,
            bytes=disk.bytes,
            entries=disk.entries,
            pinned=disk.pinned,
            memory_hits=self._compiled.statistics().hits,
            builds=self._builds,
            precompiled_loads=self._loads,
            shared_loads=self._shared_loads,
            stale_artifacts=self._stale,
            rejected_artifacts=shared.rejected if shared is not None else 0,
            shared_errors=shared.errors if shared is not None else 0,
        )

    @asynccontextmanager
    async def _local(self, hex_digest: str, given: CacheEntry | None) -> AsyncIterator[CacheEntry | None]:
        if given is not None:
            yield given
        else:
            async with self._disk.lookup(hex_digest) as found:
                yield found

    async def _produce(
        self,
        hex_digest: str,
        target: str,
        build: Callable[[], Awaitable[V]],
        serialize: Callable[[V], bytes | bytearray],
        deserialize_file: Callable[[Path], V],
        given: CacheEntry | None,
    ) -> tuple[V, int]:
        # One build per (hash, target) among the processes sharing the disk cache: whoever waited for the lock
        # finds the artifact the builder stored (the entry refreshed from index.json) and loads it.
        async with self._disk.process_lock(hex_digest, f"build-{target}"):
            return await self._produce_locked(hex_digest, target, build, serialize, deserialize_file, given)

    async def _produce_locked(
        self,
        hex_digest: str,
        target: str,
        build: Callable[[], Awaitable[V]],
        serialize: Callable[[V], bytes | bytearray],
        deserialize_file: Callable[[Path], V],
        given: CacheEntry | None,
    ) -> tuple[V, int]:
        relpath = artifact_relpath(target)
        async with self._local(hex_digest, given) as local:
            if local is not None:
                await local.refresh()
            if local is not None and local.has(relpath):
                loaded = await self._load_file(local, relpath, deserialize_file)
                if loaded is not None:
                    self._loads += 1
                    return loaded
            if self._shared is not None:
                payload = await self._shared.fetch(hex_digest, target)
                if payload is not None:
                    loaded = await self._load_payload(local, relpath, payload, deserialize_file)
                    if loaded is not None:
                        self._loads += 1
                        self._shared_loads += 1
                        return loaded
        self._builds += 1
        built = await build()
        data = await trio.to_thread.run_sync(serialize, built)
        # The build usually fetched the entry itself (or refilled a corrupted one): store the artifact in
        # whatever entry is current now.
        async with self._disk.lookup(hex_digest) as local:
            if local is not None:
                try:
                    await local.add_file(relpath, data)
                except (CacheError, OSError) as exc:
                    log.warning("precompiled artifact %s/%s not stored: %s", hex_digest, target, exc)
        if self._shared is not None:
            await self._shared.publish(hex_digest, target, data)
        return built, len(data)

    async def _load_file(
        self, local: CacheEntry, relpath: str, deserialize_file: Callable[[Path], V]
    ) -> tuple[V, int] | None:
        try:
            path = await local.verify(relpath)
        except CacheError as exc:
            log.warning("precompiled artifact %s/%s unusable: %s", local.hex, relpath, exc)
            return None
        try:
            value = await trio.to_thread.run_sync(deserialize_file, path)
        except Exception as exc:
            # Built by another wasmtime or engine config: a miss, and the file will never load here.
            self._stale += 1
            log.info("precompiled artifact %s/%s is stale (%s): rebuilding", local.hex, relpath, exc)
            try:
                await local.remove_file(relpath)
            except (CacheError, OSError) as remove_exc:
                log.warning("could not remove stale artifact %s/%s: %s", local.hex, relpath, remove_exc)
            return None
        return value, local.files[relpath].size

    async def _load_payload(
        self,
        local: CacheEntry | None,
        relpath: str,
        payload: memoryview,
        deserialize_file: Callable[[Path], V],
    ) -> tuple[V, int] | None:
        """Deserialize an authenticated shared payload from a file this cache wrote."""
        if local is not None:
            try:
                await local.add_file(relpath, payload)
            except (CacheError, OSError) as exc:
                log.warning("shared artifact for %s not stored locally: %s", local.hex, exc)
            else:
                return await self._load_file(local, relpath, deserialize_file)
        try:
            async with self._disk.temp_dir() as tmp:
                path = tmp / "artifact.cwasm"
                await trio.to_thread.run_sync(path.write_bytes, payload)
                try:
                    value = await trio.to_thread.run_sync(deserialize_file, path)
                except Exception as exc:
                    self._stale += 1
                    log.info("shared artifact %s is stale (%s): rebuilding", relpath, exc)
                    return None
        except OSError as exc:
            # No room to stage it (a full disk): compiling needs no disk, so build instead.
            log.warning("shared artifact %s not staged: %s: rebuilding", relpath, exc)
            return None
        return value, len(payload)
