"""Component type reflection, read once: wasmtime-py re-reads a function's types on every call.

``Func.__call__`` asks the C API for the function's type on each call, and every conversion re-reads what it
needs of its type (a record's fields, a list's element, an option's payload) through further C calls that each
build new Python type objects and release and re-take the GIL. For the WAT echo guest that was ~80 of ~145 C
calls per invocation. The type objects describe the compiled component and never change, so:

* :func:`install_type_memo` makes those reads compute once per type object (``RecordType.fields``,
  ``ListType.element``, ``OptionType.payload``, ``ResultType.ok``/``err``, ``TupleType.elements``,
  ``VariantType.cases``, ``FuncType.params``/``result``, and what is derived from them), and lowers an
  untagged ``option<T>`` without wasmtime-py's shared (and not thread-safe) class-test set;
* :func:`export_function` keeps, per compiled component and export name, the export index and the function
  type, and hands each call a ``Func`` that answers ``type()`` from that cache; the cache lives as long as the
  component object (a weak-keyed map), as do the type objects it holds.

Each patch checks the internals it relies on; when they are not the expected ones nothing is patched (the
stock, slower paths stay correct) and a warning is logged once.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any, Final, final

from wasmtime import _ffi as ffi
from wasmtime.component import Component, Func, Instance
from wasmtime.component import _types as types

__all__ = ["ExportFunction", "export_function", "install_type_memo", "type_memo_installed"]

logger = logging.getLogger(__name__)

_MEMO: Final = "_alga_memo"
_FUNC_TYPE: Final = "_alga_func_type"
_KIND_OPTION: Final = ffi.WASMTIME_COMPONENT_OPTION

_state = {"installed": False}


def _memo_property(stock: property, key: str) -> property:
    getter: Callable[[Any], Any] = stock.fget  # type: ignore[assignment]

    def memoized(self: Any) -> Any:
        memo: dict[str, Any] | None = self.__dict__.get(_MEMO)
        if memo is None:
            memo = self.__dict__.setdefault(_MEMO, {})
        try:
            return memo[key]
        except KeyError:
            value = memo[key] = getter(self)
            return value

    return property(memoized, doc=stock.__doc__)


def _memo_method(stock: Callable[[Any], Any], key: str) -> Callable[[Any], Any]:
    def memoized(self: Any) -> Any:
        memo: dict[str, Any] | None = self.__dict__.get(_MEMO)
        if memo is None:
            memo = self.__dict__.setdefault(_MEMO, {})
        try:
            return memo[key]
        except KeyError:
            value = memo[key] = stock(self)
            return value

    return memoized


def _case_classes(ty: types.ValType) -> tuple[type, ...]:
    memo: dict[str, Any] | None = ty.__dict__.get(_MEMO)
    if memo is None:
        memo = ty.__dict__.setdefault(_MEMO, {})
    classes: tuple[type, ...] | None = memo.get("classes")
    if classes is None:
        found: set[type] = set()
        ty.add_classes(found)
        classes = memo["classes"] = tuple(found)
    return classes


_stock_option_to_c = types.OptionType.convert_to_c


def _option_to_c(self: types.OptionType, store: Any, val: Any, ptr: Any) -> None:
    # The stock path (VariantLikeType._lower) re-derives the case classes on every value, in a module-global set.
    if self._tagged():
        _stock_option_to_c(self, store, val, ptr)
        return
    raw = None
    if val is not None:
        payload = self.payload
        if not isinstance(val, _case_classes(payload)):
            raise ValueError("value not valid for this variant")
        space = ffi.wasmtime_component_val_t()
        payload.convert_to_c(store, val, ctypes.pointer(space))
        raw = ffi.wasmtime_component_val_new(ctypes.byref(space))
    ptr.contents.kind = _KIND_OPTION
    ptr.contents.of.option = raw


_stock_func_type = Func.type


def _func_type(self: Func, store: Any) -> types.FuncType:
    cached: types.FuncType | None = self.__dict__.get(_FUNC_TYPE)
    if cached is not None:
        return cached
    return _stock_func_type(self, store)


_PROPERTIES: Final[tuple[tuple[type, str], ...]] = (
    (types.RecordType, "fields"),
    (types.ListType, "element"),
    (types.OptionType, "payload"),
    (types.ResultType, "ok"),
    (types.ResultType, "err"),
    (types.TupleType, "elements"),
    (types.VariantType, "cases"),
    (types.FuncType, "params"),
    (types.FuncType, "result"),
)
_METHODS: Final[tuple[tuple[type, str], ...]] = ((types.ListType, "_is_bytes"), (types.VariantLikeType, "_tagged"))


def _internals_ok() -> bool:
    return (
        all(isinstance(cls.__dict__.get(name), property) for cls, name in _PROPERTIES)
        and all(callable(cls.__dict__.get(name)) for cls, name in _METHODS)
        and callable(types.OptionType.__dict__.get("convert_to_c"))
        and callable(Func.__dict__.get("type"))
        and callable(getattr(ffi, "wasmtime_component_val_new", None))
    )


def install_type_memo() -> bool:
    """Memoize wasmtime-py's type reflection (idempotent); False when its internals are not the expected ones."""
    if _state["installed"]:
        return True
    if not _internals_ok():
        logger.warning("wasmtime-py type internals are not the expected ones: type reflection is not cached")
        return False
    for cls, name in _PROPERTIES:
        setattr(cls, name, _memo_property(cls.__dict__[name], f"{cls.__name__}.{name}"))
    for cls, name in _METHODS:
        setattr(cls, name, _memo_method(cls.__dict__[name], f"{cls.__name__}.{name}"))
    types.OptionType.convert_to_c = _option_to_c  # type: ignore[method-assign]
    Func.type = _func_type  # type: ignore[method-assign]
    _state["installed"] = True
    return True


def type_memo_installed() -> bool:
    """Whether type reflection is currently memoized."""
    return bool(_state["installed"])


@final
class ExportFunction:
    """One exported function of a compiled component: its export index and its type, read once."""

    def __init__(self, component: Component, name: str) -> None:
        self.name = name
        self._index = component.get_export_index(name)
        self._type: types.FuncType | None = None
        self._lock = threading.Lock()

    @property
    def exists(self) -> bool:
        return self._index is not None

    def get(self, instance: Instance, store: Any) -> Func | None:
        """The function in ``instance`` (an instance of the component), its type cached; None if not exported."""
        if self._index is None:
            return None
        func = instance.get_func(store, self._index)
        if func is None:
            return None
        fty = self._type
        if fty is None:
            fty = _stock_func_type(func, store)
            with self._lock:
                if self._type is None:
                    self._type = fty
                fty = self._type
        func.__dict__[_FUNC_TYPE] = fty
        return func


_exports: weakref.WeakKeyDictionary[Component, dict[str, ExportFunction]] = weakref.WeakKeyDictionary()
_exports_lock = threading.Lock()


def export_function(component: Component, name: str) -> ExportFunction:
    """The cached :class:`ExportFunction` ``name`` of ``component`` (made on first use, kept with the component)."""
    with _exports_lock:
        per_component = _exports.get(component)
        if per_component is None:
            per_component = _exports[component] = {}
        found = per_component.get(name)
        if found is None:
            found = per_component[name] = ExportFunction(component, name)
        return found
