"""``alga:extension/storage``: the WIT glue of per-install key-value storage, behind ``cap:storage.kv``.

The host functions call a :class:`WitStorage`: the WIT functions' own shape (``put(scope, entry)`` with the
expected revision on the entry, ``list_entries`` answering one page). :class:`WitStorageAdapter` gives any
:class:`StorageBackend` that shape. Not granted, or no backend: ``denied``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, final

from wasmtime.component import Record

from ...engine import (
    Err,
    HostScope,
    Invocation,
    LinkerInstanceBuilder,
    Ok,
    call_backend,
    host_function,
    wit_record,
)
from .._errors import HostCallError
from .._unit import CapabilityBase, aclose_backend, denied, guest_error, interface_name
from ._backend import Entry, StorageBackend

__all__ = [
    "STORAGE_ERRORS",
    "StorageCapability",
    "StorageEntry",
    "StorageEntryLike",
    "WitStorage",
    "WitStorageAdapter",
]

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


class WitStorage(Protocol):
    """What the host functions call, in the shape of the WIT functions; raises :class:`HostCallError` with a
    ``storage-error`` case (``missing``, ``conflict``, ``denied``, ``internal``)."""

    async def get(self, scope: HostScope, namespace: str, key: str) -> StorageEntryLike: ...

    async def put(self, scope: HostScope, entry: StorageEntry) -> StorageEntryLike: ...

    async def delete(self, scope: HostScope, namespace: str, key: str) -> None: ...

    async def list_entries(
        self, scope: HostScope, namespace: str, cursor: str | None
    ) -> Sequence[StorageEntryLike]: ...


@final
class WitStorageAdapter:
    """A :class:`StorageBackend` in the shape of the WIT functions: ``put(scope, entry)`` (``entry.revision`` =
    the expected revision, ``None`` = unconditional) and ``list_entries(scope, namespace, cursor)`` answering
    one page."""

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend

    async def get(self, scope: HostScope, namespace: str, key: str) -> Entry:
        return await self.backend.get(scope, namespace, key)

    async def put(self, scope: HostScope, entry: StorageEntryLike) -> Entry:
        return await self.backend.put(scope, entry.namespace, entry.key, entry.value, entry.revision)

    async def delete(self, scope: HostScope, namespace: str, key: str) -> None:
        await self.backend.delete(scope, namespace, key)

    async def list_entries(self, scope: HostScope, namespace: str, cursor: str | None) -> list[Entry]:
        entries, _next = await self.backend.list_entries(scope, namespace, cursor)
        return entries

    async def aclose(self) -> None:
        await self.backend.aclose()


@final
class StorageCapability(CapabilityBase):
    """``get``, ``put``, ``delete``, ``list-entries``.

    Args:
        backend: the store; None answers every call ``denied``.
    """

    name = "storage"
    grant: str | None = "cap:storage.kv"

    def __init__(self, backend: WitStorage | None = None) -> None:
        self.backend = backend

    async def aclose(self) -> None:
        await aclose_backend(self.backend)

    def link(self, root: LinkerInstanceBuilder) -> None:
        with root.add_instance(interface_name(self.name)) as instance:
            instance.add_func("get", host_function(self.get))
            instance.add_func("put", host_function(self.put))
            instance.add_func("delete", host_function(self.delete))
            instance.add_func("list-entries", host_function(self.list_entries))

    def _backend(self, invocation: Invocation) -> WitStorage | None:
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
            _count(invocation, 0)
            return guest_error(invocation, exc, STORAGE_ERRORS)
        _count(invocation, len(entry.value))
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
        _count(invocation, len(request.value))
        try:
            stored = call_backend(invocation, backend.put, invocation.host_scope, request)
        except HostCallError as exc:
            return guest_error(invocation, exc, STORAGE_ERRORS)
        return Ok(_entry_record(stored))

    def delete(self, invocation: Invocation, namespace: str, key: str) -> Ok | Err:
        backend = self._backend(invocation)
        if backend is None:
            return denied(invocation, Err("denied"))
        _count(invocation, 0)
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
            _count(invocation, 0)
            return guest_error(invocation, exc, STORAGE_ERRORS)
        _count(invocation, sum(len(entry.value) for entry in entries))
        return Ok([_entry_record(entry) for entry in entries])


def _count(invocation: Invocation, size: int) -> None:
    """Usage: one storage operation that reached the backend, and the value bytes it read or wrote."""
    invocation.counters.add_pair("storage_ops", 1, "storage_bytes", size)


def _entry_record(entry: StorageEntryLike) -> Record:
    return wit_record(
        namespace=str(entry.namespace),
        key=str(entry.key),
        value=bytes(entry.value),
        revision=None if entry.revision is None else int(entry.revision),
    )
