"""Values crossing the ``handler`` boundary, and a fast path for ``list<u8>``.

``execute-request`` / ``execute-response`` are built from and parsed into :class:`GuestRequest` /
:class:`GuestResponse`.

wasmtime-py converts a ``list<u8>`` one element at a time through a 32-byte ``wasmtime_component_val_t``
each (64 KiB: ~140 ms; 1 MiB: ~2.7 s). The fast path fills and reads that value array with two strided
``memoryview`` copies (the kind byte at offset 0, the ``u8`` at the union's offset, stride = the value's
size), leaving only the C API's own per-element cost. It replaces ``ListType.convert_to_c`` /
``convert_from_c`` for lists of ``u8`` only, after checking the layout it relies on; when the layout is not
the expected one it leaves wasmtime-py alone (slower, still correct). wasmtime also caps the values one
host call may allocate ("hostcall fuel"): bodies of a few MiB fail whatever the conversion; cap bodies
well below that.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from wasmtime import _ffi as ffi
from wasmtime.component import ListType, Record

from ._host import wit_record
from ._invocation import InvocationContext

__all__ = [
    "GuestRequest",
    "GuestResponse",
    "build_execute_request",
    "fast_bytes_installed",
    "install_fast_bytes",
    "parse_execute_response",
    "stock_bytes_conversion",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GuestRequest:
    """The ``http`` half of ``execute-request`` (the ``context`` half comes from the invocation)."""

    method: str
    url: str
    headers: Sequence[tuple[str, str]] = ()
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class GuestResponse:
    """``execute-response``: what the guest answered."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None


def build_execute_request(request: GuestRequest, context: InvocationContext) -> Record:
    """The ``execute-request`` record for ``handler``."""
    return wit_record(
        context=wit_record(
            request_id=context.request_id,
            tenant_id=context.tenant_id,
            extension_id=context.extension_id,
            install_id=context.install_id,
            version_id=context.version_id,
        ),
        http=wit_record(
            method=request.method,
            url=request.url,
            headers=[wit_record(name=name, value=value) for name, value in request.headers],
            body=None if request.body is None else bytes(request.body),
        ),
    )


def parse_execute_response(value: Any) -> GuestResponse:
    """A :class:`GuestResponse` from the lifted ``execute-response`` record."""
    body = value.body
    return GuestResponse(
        status=int(value.status),
        headers=[(str(header.name), str(header.value)) for header in value.headers],
        body=None if body is None else bytes(body),
    )


# -- list<u8> fast path ------------------------------------------------------------------------------------

_VAL: Final = ffi.wasmtime_component_val_t
_STRIDE: Final = ctypes.sizeof(_VAL)
_PAYLOAD: Final = _VAL.of.offset
_KIND_U8: Final = int(ffi.WASMTIME_COMPONENT_U8.value)
_KIND_BOOL: Final = int(ffi.WASMTIME_COMPONENT_BOOL.value)
_KIND_LIST: Final = int(ffi.WASMTIME_COMPONENT_LIST.value)

_stock_to_c = ListType.convert_to_c
_stock_from_c = ListType.convert_from_c
_state = {"installed": False, "enabled": False}


def _values_view(data: Any, count: int) -> memoryview:
    address = ctypes.cast(data, ctypes.c_void_p).value
    if not address:
        raise ValueError("null value array")
    return memoryview((ctypes.c_uint8 * (count * _STRIDE)).from_address(address)).cast("B")


def _bytes_to_c(val: Any, ptr: Any) -> None:
    if not isinstance(val, (bytes, bytearray, memoryview)):
        raise TypeError("expected bytes value")
    payload = memoryview(val).cast("B")
    count = len(payload)
    raw = ffi.wasmtime_component_vallist_t()
    ffi.wasmtime_component_vallist_new_uninit(raw, count)
    if count:
        view = _values_view(raw.data, count)
        try:
            view[0::_STRIDE] = bytes((_KIND_U8,)) * count
            view[_PAYLOAD::_STRIDE] = payload
        except BaseException:
            # Every element must hold a valid kind before the list is freed.
            view[0::_STRIDE] = bytes((_KIND_BOOL,)) * count
            ffi.wasmtime_component_vallist_delete(ctypes.byref(raw))
            raise
    ptr.contents.kind = ffi.WASMTIME_COMPONENT_LIST
    ptr.contents.of.list = raw


def _bytes_from_c(c: Any) -> bytes:
    if c.kind != _KIND_LIST:
        raise TypeError("expected a list value")
    try:
        count = c.of.list.size
        if not count:
            return b""
        view = _values_view(c.of.list.data, count)
        # wasmtime lifted a list<u8>, so every element is a u8; checking both ends catches a layout surprise
        # without a second pass over the array.
        if view[0] != _KIND_U8 or view[(count - 1) * _STRIDE] != _KIND_U8:
            raise TypeError("list<u8> holds an element that is not u8")
        return bytes(view[_PAYLOAD::_STRIDE])
    finally:
        ffi.wasmtime_component_vallist_delete(ctypes.byref(c.of.list))


def _fast_to_c(self: ListType, store: Any, val: Any, ptr: Any) -> None:
    if _state["enabled"] and self._is_bytes():
        _bytes_to_c(val, ptr)
    else:
        _stock_to_c(self, store, val, ptr)


def _fast_from_c(self: ListType, c: Any) -> Any:
    if _state["enabled"] and self._is_bytes():
        return _bytes_from_c(c)
    return _stock_from_c(self, c)


def _field(structure: Any, name: str) -> Any:
    # ctypes field descriptors (offset, size), which the bindings' annotations hide from type checkers
    return structure.__dict__[name]


def _layout_ok() -> bool:
    try:
        return (
            _STRIDE >= _PAYLOAD + 1
            and _field(_VAL, "kind").offset == 0
            and _field(_VAL, "kind").size == 1
            and _field(ffi.wasmtime_component_valunion_t, "u8").offset == 0
            and _field(ffi.wasmtime_component_vallist_t, "size").offset == 0
            and callable(getattr(ListType, "_is_bytes", None))
            and callable(getattr(ffi, "wasmtime_component_vallist_new_uninit", None))
            and callable(getattr(ffi, "wasmtime_component_vallist_delete", None))
        )
    except (AttributeError, KeyError):
        return False


def install_fast_bytes() -> bool:
    """Install the ``list<u8>`` fast path (idempotent); False when the layout check fails (stock stays)."""
    if _state["installed"]:
        return bool(_state["enabled"])
    if not _layout_ok():
        logger.warning("wasmtime-py value layout is not the expected one: list<u8> uses the slow conversion")
        return False
    ListType.convert_to_c = _fast_to_c  # type: ignore[method-assign]
    ListType.convert_from_c = _fast_from_c  # type: ignore[method-assign]
    _state["installed"] = _state["enabled"] = True
    return True


def fast_bytes_installed() -> bool:
    """Whether ``list<u8>`` values currently take the fast path."""
    return bool(_state["installed"] and _state["enabled"])


@contextmanager
def stock_bytes_conversion() -> Iterator[None]:
    """Use wasmtime-py's own ``list<u8>`` conversion inside the block (for benchmarks; process-wide)."""
    previous = _state["enabled"]
    _state["enabled"] = False
    try:
        yield
    finally:
        _state["enabled"] = previous
