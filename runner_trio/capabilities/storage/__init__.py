"""The storage capability: ``alga:extension/storage``, per-install key-value storage behind ``cap:storage.kv``.

One folder holds the whole unit:

* ``_backend.py``: the one :class:`StorageBackend` protocol, the stored :class:`Entry`, the
  :class:`StorageLimits` both backends enforce, and who owns a record (:func:`storage_owner`);
* ``_sqlite.py`` / ``_postgres.py`` / ``_http.py``: the embedded SQLite backend, PostgreSQL (shared by a
  fleet of runners) and the platform's HTTP storage API;
* ``_capability.py``: the WIT glue (:class:`StorageCapability`) and the adapter giving a backend the WIT
  functions' shape;
* ``_configure.py``: :func:`configure`, reading ``RUNNER_STORAGE_URL`` / ``RUNNER_STORAGE_AUTH_KEY`` once.

Its errors are the capabilities' tree: :class:`HostCallError` (``missing``, ``conflict``, ``denied``,
``internal``) and :class:`StorageConfigError` at start.
"""

from __future__ import annotations

from .._errors import StorageConfigError
from ._backend import (
    DEFAULT_MAX_KEY_CHARS,
    DEFAULT_MAX_KEYS_PER_NAMESPACE,
    DEFAULT_MAX_NAMESPACE_CHARS,
    DEFAULT_MAX_NAMESPACES,
    DEFAULT_MAX_TOTAL_BYTES,
    DEFAULT_MAX_VALUE_BYTES,
    DEFAULT_PAGE_SIZE,
    Entry,
    StorageBackend,
    StorageLimits,
    storage_owner,
)
from ._capability import (
    STORAGE_ERRORS,
    StorageCapability,
    StorageEntry,
    StorageEntryLike,
    WitStorage,
    WitStorageAdapter,
)
from ._configure import StorageSettings, configure, defaults, open_storage, storage_url
from ._http import HttpStorage
from ._postgres import DEFAULT_POSTGRES_CONNECTIONS, PostgresStorage
from ._sqlite import DEFAULT_BUSY_TIMEOUT, DEFAULT_MAX_THREADS, SqliteStorage

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "DEFAULT_MAX_KEYS_PER_NAMESPACE",
    "DEFAULT_MAX_KEY_CHARS",
    "DEFAULT_MAX_NAMESPACES",
    "DEFAULT_MAX_NAMESPACE_CHARS",
    "DEFAULT_MAX_THREADS",
    "DEFAULT_MAX_TOTAL_BYTES",
    "DEFAULT_MAX_VALUE_BYTES",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_POSTGRES_CONNECTIONS",
    "STORAGE_ERRORS",
    "Entry",
    "HttpStorage",
    "PostgresStorage",
    "SqliteStorage",
    "StorageBackend",
    "StorageCapability",
    "StorageConfigError",
    "StorageEntry",
    "StorageEntryLike",
    "StorageLimits",
    "StorageSettings",
    "WitStorage",
    "WitStorageAdapter",
    "configure",
    "defaults",
    "open_storage",
    "storage_owner",
    "storage_url",
]
