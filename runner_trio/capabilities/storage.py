"""``alga:extension/storage``: per-install key-value storage, behind ``cap:storage.kv``.

The glue between the WIT and a :class:`StorageBackend`; not granted, or no backend: ``denied``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, final

from wasmtime.component import Record

from ._base import (
    Err,
    LinkerInstanceBuilder,
    Ok,
    call_backend,
    denied,
    guest_error,
    host_function,
    interface_name,
    wit_record,
)
from ._host_errors import HostCallError, HostScope
from ._invocation import Invocation

__all__ = ["STORAGE_ERRORS", "StorageBackend", "StorageCapability", "StorageEntry", "StorageEntryLike"]

STORAGE_ERRORS: Final = frozenset({"missing", "conflict", "denied", "internal"})


@dataclass(frozen=True, slots=True)
class StorageEntry:
    """``storage-entry``; ``revision`` None on a put means unconditional, else compare-and-swap."""

    namespace: str
    key: str
    value: bytes
    revision: int | None = None


class StorageEntryLike(Protocol):
    """What a backend returns for an entry (any object with these attributes)."""

    @property
    def namespace(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def value(self) -> bytes: ...

    @property
    def revision(self) -> int | None: ...


class StorageBackend(Protocol):
    """Stores entries of one install (``scope.install_id``); raises :class:`HostCallError` with a
    ``storage-error`` case (``missing``, ``conflict``, ``denied``, ``internal``)."""

    async def get(self, scope: HostScope, namespace: str, key: str) -> StorageEntryLike: ...

    async def put(self, scope: HostScope, entry: StorageEntry) -> StorageEntryLike: ...

    async def delete(self, scope: HostScope, namespace: str, key: str) -> None: ...

    async def list_entries(
        self, scope: HostScope, namespace: str, cursor: str | None
    ) -> Sequence[StorageEntryLike]: ...


@final
class StorageCapability:
    """``get``, ``put``, ``delete``, ``list-entries``.

    Args:
        backend: the store; None answers every call ``denied``.
    """

    name = "storage"
    grant: str | None = "cap:storage.kv"

    def __init__(self, backend: StorageBackend | None = None) -> None:
        self.backend = backend

    def link(self, root: LinkerInstanceBuilder) -> None:
        with root.add_instance(interface_name(self.name)) as instance:
            instance.add_func("get", host_function(self.get))
            instance.add_func("put", host_function(self.put))
            instance.add_func("delete", host_function(self.delete))
            instance.add_func("list-entries", host_function(self.list_entries))

    def _backend(self, invocation: Invocation) -> StorageBackend | None:
        if not invocation.allows(self.grant):
            return None
        return self.backend

    def get(self, invocation: Invocation, namespace: str, key: str) -> Ok | Err:
        backend = self._backend(invocation)
        if backend is None:
            return denied(invocation, Err("denied"))
        try:
            entry = call_backend(invocation, backend.get, invocation.host_scope, namespace, key)
        except HostCallError as exc:
            return guest_error(invocation, exc, STORAGE_ERRORS)
        return Ok(_entry_record(entry))

    def put(self, invocation: Invocation, entry: Any) -> Ok | Err:
        backend = self._backend(invocation)
        if backend is None:
            return denied(invocation, Err("denied"))
        request = StorageEntry(
            namespace=str(entry.namespace),
            key=str(entry.key),
            value=bytes(entry.value),
            revision=entry.revision,
        )
        try:
            stored = call_backend(invocation, backend.put, invocation.host_scope, request)
        except HostCallError as exc:
            return guest_error(invocation, exc, STORAGE_ERRORS)
        return Ok(_entry_record(stored))

    def delete(self, invocation: Invocation, namespace: str, key: str) -> Ok | Err:
        backend = self._backend(invocation)
        if backend is None:
            return denied(invocation, Err("denied"))
        try:
            call_backend(invocation, backend.delete, invocation.host_scope, namespace, key)
        except HostCallError as exc:
            return guest_error(invocation, exc, STORAGE_ERRORS)
        return Ok(None)

    def list_entries(self, invocation: Invocation, namespace: str, cursor: str | None) -> Ok | Err:
        backend = self._backend(invocation)
        if backend is None:
            return denied(invocation, Err("denied"))
        try:
            entries = call_backend(invocation, backend.list_entries, invocation.host_scope, namespace, cursor)
        except HostCallError as exc:
            return guest_error(invocation, exc, STORAGE_ERRORS)
        return Ok([_entry_record(entry) for entry in entries])


def _entry_record(entry: StorageEntryLike) -> Record:
    return wit_record(
        namespace=str(entry.namespace),
        key=str(entry.key),
        value=bytes(entry.value),
        revision=None if entry.revision is None else int(entry.revision),
    )
