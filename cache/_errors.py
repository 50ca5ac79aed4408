"""Errors raised by the on-disk cache, the compiled-object cache and the artifact cache.

The tree::

    CacheError                 anything the cache refuses or cannot do
    ├── InvalidKey             a content hash, relative path, subtree name or target is malformed
    ├── InvalidFill            a fill produced something the cache will not publish (symlink, bad name…)
    ├── NotCached              the entry has no file at that relative path (index.json does not list it)
    ├── CacheCorrupted         a listed file is missing or no longer matches its sha256; the entry was dropped
    ├── ArtifactRejected       a shared precompiled artifact failed authentication or is malformed
    ├── CacheFull              a write found the cache's filesystem full (ENOSPC/EDQUOT) and evicting unused
    │                          entries did not make room; nothing partial was left behind
    └── CacheClosed            the cache was used after ``aclose()``

Each carries a short machine ``code`` (stable, used in logs and metrics) and a human message. Errors raised by
a caller's own callables (a fill, a build) are never wrapped: they reach every waiter of a single-flight as is.
"""

from __future__ import annotations


class CacheError(Exception):
    """Base of every cache error."""

    code: str = "cache_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidKey(CacheError):
    """A content hash, relative path, subtree name or artifact target is malformed."""

    code = "invalid_key"


class InvalidFill(CacheError):
    """A fill left something the cache refuses to publish (a symlink, a special file, a reserved name)."""

    code = "invalid_fill"


class CacheCorrupted(CacheError):
    """A cached file is missing or its bytes no longer match index.json.

    The entry has already been dropped when this is raised: calling ``DiskCache.entry(hex, fill)`` again runs
    the fill and refetches (``DiskCache.read_verified`` does that once by itself).
    """

    code = "cache_corrupted"

    def __init__(self, hex_digest: str, relpath: str, reason: str) -> None:
        super().__init__(f"cache entry {hex_digest}: {relpath}: {reason}")
        self.hex = hex_digest
        self.relpath = relpath
        self.reason = reason


class ArtifactRejected(CacheError):
    """A shared precompiled artifact is malformed or its HMAC tag does not verify; it is never deserialized."""

    code = "artifact_rejected"


class CacheFull(CacheError):
    """The cache's filesystem is full: a write failed with ENOSPC or EDQUOT even after eviction made room.

    The message starts with ``cache disk full:``; the write left no partial file. ``free_bytes`` is what the
    filesystem had free when the cache gave up (-1 when it could not be read).
    """

    code = "cache_full"

    def __init__(self, message: str, *, free_bytes: int) -> None:
        super().__init__(message)
        self.free_bytes = free_bytes


class CacheClosed(CacheError):
    """The cache was used after ``aclose()``."""

    code = "cache_closed"


class NotCached(CacheError):
    """The entry has no file at that relative path (for a UI file: a 404, not a corruption)."""

    code = "not_cached"
