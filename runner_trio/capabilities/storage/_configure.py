"""The storage unit's settings: which backend ``RUNNER_STORAGE_URL`` names, read and checked once at start.

Only this module knows both backends, so neither backend imports the other nor the factory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from servicekit import POSTGRES_SCHEMES, url_scheme

from .._errors import StorageConfigError
from .._unit import Capability, Hooks
from ._backend import StorageBackend, StorageLimits
from ._capability import StorageCapability, WitStorageAdapter
from ._http import HttpStorage
from ._postgres import PostgresStorage
from ._sqlite import SqliteStorage

__all__ = ["StorageSettings", "configure", "open_storage", "storage_url"]


class StorageSettings(Protocol):
    """What the storage unit reads of the runner's settings."""

    @property
    def var_dir(self) -> Path: ...

    @property
    def storage_url(self) -> str | None: ...

    @property
    def storage_auth_key(self) -> str | None: ...


def storage_url(settings: StorageSettings) -> str:
    """``RUNNER_STORAGE_URL``, or the embedded default: a SQLite file under ``RUNNER_VAR_DIR``."""
    if settings.storage_url:
        return settings.storage_url
    return f"sqlite:///{(settings.var_dir / 'storage.sqlite3').resolve()}"


def configure(settings: StorageSettings, hooks: Hooks) -> tuple[Capability, ...]:
    """The storage capability on the backend the settings name.

    Raises:
        StorageConfigError: ``RUNNER_STORAGE_URL`` is unusable.
    """
    backend = open_storage(storage_url(settings), auth_key=settings.storage_auth_key)
    return (StorageCapability(WitStorageAdapter(backend)),)


def open_storage(
    url: str,
    *,
    auth_key: str | None = None,
    limits: StorageLimits | None = None,
) -> StorageBackend:
    """Make the backend ``RUNNER_STORAGE_URL`` names.

    Args:
        url: ``sqlite:///relative/path``, ``sqlite:////absolute/path``, ``postgresql://user@host:port/db``
            (``postgres://`` too; shared by a fleet of runners), or the platform's ``http(s)://`` base.
        auth_key: ``x-runner-auth`` for the HTTP backend (``RUNNER_STORAGE_AUTH_KEY``).
        limits: the storage limits; the defaults when ``None``.

    Raises:
        StorageConfigError: an unknown scheme or an unusable path.
    """
    chosen = limits if limits is not None else StorageLimits()
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path or path == ":memory:" or path.startswith("file:"):
            raise StorageConfigError("sqlite needs a file path (sqlite:///path)")
        return SqliteStorage(path, limits=chosen)
    if url.startswith(("http://", "https://")):
        return HttpStorage(url, auth_key, limits=chosen)
    if url_scheme(url) in POSTGRES_SCHEMES:
        if not url.split("://", 1)[1]:
            raise StorageConfigError("postgresql needs a server or a database (postgresql://user@host:port/db)")
        return PostgresStorage(url, limits=chosen)
    raise StorageConfigError("expected sqlite:///path, postgresql://user@host:port/db or an http(s):// base URL")


def defaults() -> tuple[Capability, ...]:
    """What a Linker has when nothing is configured (no backend: every call ``denied``)."""
    return (StorageCapability(),)
