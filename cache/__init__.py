"""Content-addressed cache of extension bundles on disk, compiled objects in memory, precompiled artifacts.

The package knows nothing of HTTP or of wasm policy: the runner passes the wasm-specific work (fetching a
bundle, compiling, serializing, deserializing) in as callables.

- `DiskCache`: ``<root>/<hex>/`` entries with an index.json of sha256s, filled once per hash (single-flight),
  published by atomic rename, verified on load, evicted least recently used first within ``max_bytes``; a
  write that finds the filesystem full evicts unused entries and tries once more (`CacheFull` if that fails).
- `CompiledCache`: in-memory LRU of compiled objects bounded by count and approximate bytes.
- `ArtifactCache`: memory -> local precompiled file -> HMAC-authenticated shared store -> build.
"""

from ._artifacts import ArtifactCache
from ._compiled import DEFAULT_MAX_COMPILED_BYTES, DEFAULT_MAX_COMPILED_ENTRIES, CompiledCache
from ._disk import DEFAULT_ACCESS_PERSIST_INTERVAL, DEFAULT_MAX_BYTES, DEFAULT_MIN_FREE_BYTES, DiskCache
from ._entry import CacheEntry, Fill
from ._errors import (
    ArtifactRejected,
    CacheClosed,
    CacheCorrupted,
    CacheError,
    CacheFull,
    InvalidFill,
    InvalidKey,
    NotCached,
)
from ._flight import SingleFlight
from ._fs import FileInfo
from ._keys import artifact_relpath, validate_hex, validate_relpath, validate_target
from ._shared import (
    DEFAULT_MAX_ARTIFACT_BYTES,
    DEFAULT_SHARED_TIMEOUT,
    RemoteStore,
    SharedArtifacts,
    default_remote_key,
    open_artifact,
    precompile_key,
    seal_artifact,
)
from ._stats import CacheStats, CompiledCacheStats

__all__ = [
    "DEFAULT_ACCESS_PERSIST_INTERVAL",
    "DEFAULT_MAX_ARTIFACT_BYTES",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_COMPILED_BYTES",
    "DEFAULT_MAX_COMPILED_ENTRIES",
    "DEFAULT_MIN_FREE_BYTES",
    "DEFAULT_SHARED_TIMEOUT",
    "ArtifactCache",
    "ArtifactRejected",
    "CacheClosed",
    "CacheCorrupted",
    "CacheEntry",
    "CacheError",
    "CacheFull",
    "CacheStats",
    "CompiledCache",
    "CompiledCacheStats",
    "DiskCache",
    "FileInfo",
    "Fill",
    "InvalidFill",
    "InvalidKey",
    "NotCached",
    "RemoteStore",
    "SharedArtifacts",
    "SingleFlight",
    "artifact_relpath",
    "default_remote_key",
    "open_artifact",
    "precompile_key",
    "seal_artifact",
    "validate_hex",
    "validate_relpath",
    "validate_target",
]
