"""WAT test components, written by hand in the component text format.

``load_wat(name)`` returns the binary of ``<name>.wat`` (parsed by ``wasmtime.wat2wasm``). A line
``;; @include <file>`` is replaced by that file of this directory (the ``_*.wat`` fragments: the
``alga:extension/types`` import, the memory/allocator runtime, WASI output) before parsing, so that every
guest shares one copy of the long type declarations.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Final

import wasmtime
from wasmtime import component

__all__ = ["WAT_DIR", "golden_signatures", "load_wat", "signatures", "wat_names", "wat_text"]

WAT_DIR: Final = Path(__file__).resolve().parent
_INCLUDE: Final = re.compile(r"^\s*;;\s*@include\s+(\S+)\s*$", re.MULTILINE)


def wat_text(name: str) -> str:
    """The text of ``<name>.wat`` with its includes expanded."""
    text = (WAT_DIR / f"{name}.wat").read_text(encoding="utf-8")
    return _INCLUDE.sub(lambda match: (WAT_DIR / match.group(1)).read_text(encoding="utf-8"), text)


@functools.cache
def load_wat(name: str) -> bytes:
    """The component binary of ``<name>.wat``."""
    return bytes(wasmtime.wat2wasm(wat_text(name)))


def wat_names() -> list[str]:
    """Every guest (``*.wat`` not starting with ``_``)."""
    return sorted(path.stem for path in WAT_DIR.glob("*.wat") if not path.name.startswith("_"))


def _render(ty: Any) -> str:
    if isinstance(ty, component.ListType):
        return f"list<{_render(ty.element)}>"
    if isinstance(ty, component.RecordType):
        return "record{" + ", ".join(f"{name}: {_render(field)}" for name, field in ty.fields) + "}"
    if isinstance(ty, component.TupleType):
        return "tuple<" + ", ".join(_render(element) for element in ty.elements) + ">"
    if isinstance(ty, component.VariantType):
        cases = (name if payload is None else f"{name}({_render(payload)})" for name, payload in ty.cases)
        return "variant{" + ", ".join(cases) + "}"
    if isinstance(ty, component.EnumType):
        return "enum{" + ", ".join(ty.names) + "}"
    if isinstance(ty, component.OptionType):
        return f"option<{_render(ty.payload)}>"
    if isinstance(ty, component.ResultType):
        ok, err = ty.ok, ty.err
        return f"result<{'_' if ok is None else _render(ok)}, {'_' if err is None else _render(err)}>"
    if isinstance(ty, component.OwnType):
        return "own<resource>"
    if isinstance(ty, component.BorrowType):
        return "borrow<resource>"
    return type(ty).__name__.lower()


def _render_func(func: component.FuncType) -> str:
    params = ", ".join(f"{name}: {_render(ty)}" for name, ty in func.params)
    result = func.result
    return f"func({params})" + ("" if result is None else f" -> {_render(result)}")


def signatures(engine: wasmtime.Engine, compiled: component.Component, prefix: str = "alga:") -> dict[str, str]:
    """``{"<instance>#<function>": "func(...) -> ..."}`` for imports whose name starts with ``prefix``, plus
    ``"export#<name>"`` for exported functions: a structural rendering to compare against a golden file."""
    rendered: dict[str, str] = {}
    for name, item in compiled.type.imports(engine).items():
        instance = item.ty
        if name.startswith(prefix) and isinstance(instance, component.ComponentInstanceType):
            for func_name, func in instance.exports(engine).items():
                if isinstance(func.ty, component.FuncType):
                    rendered[f"{name}#{func_name}"] = _render_func(func.ty)
    for name, item in compiled.type.exports(engine).items():
        if isinstance(item.ty, component.FuncType):
            rendered[f"export#{name}"] = _render_func(item.ty)
    return rendered


def golden_signatures() -> dict[str, str]:
    """The signatures of ``alga-world.golden``."""
    entries: dict[str, str] = {}
    for line in (WAT_DIR / "alga-world.golden").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            key, value = line.split(" = ", 1)
            entries[key] = value
    return entries
