"""The Linker: built once, shared by every thread (a Store per invocation is what isolates them).

Contents: wasmtime's WASIp2 (never ``wasi:http``: it would let a guest reach the network around the egress
policy), this runner's clock and poll overrides (``_wasi.py``), and the host interfaces of the capabilities
it is given, each defined by the capability itself. The engine knows no capability: which interfaces a world
has, and which capability answers each, is decided by the caller (``runner_trio.capabilities``). Interfaces
are defined explicitly rather than with ``define_unknown_imports_as_traps``, which replaced real WASI
functions with traps.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Protocol

import wasmtime
from wasmtime.component import Component, Linker

from ._engine import WasmEngine
from ._errors import EngineError
from ._host import LinkerInstanceBuilder, linking_capability, naming_instance
from ._wasi import define_wasi_overrides

__all__ = ["Capability", "build_linker", "unresolved_import"]

_MAX_IMPORT_NAME_CHARS: Final = 256


class Capability(Protocol):
    """What the engine needs of a host interface: its name, and a way to define it on the Linker.

    The lifecycle, after Spin's "factors": a capability is configured once at start (its settings and
    backends, outside the engine), linked once here (``link``), and answers per invocation through the
    :class:`Invocation` its host functions find with ``current_invocation()``.

    Attributes:
        name: the interface it implements, e.g. ``"http"``; two capabilities never share one.
    """

    name: str

    def link(self, root: LinkerInstanceBuilder) -> None:
        """Define the interface's host functions on the Linker (called once, when the Linker is built)."""
        ...


def build_linker(engine: WasmEngine, capabilities: Iterable[Capability]) -> Linker:
    """A Linker for ``engine`` with WASI and exactly the given capabilities, linked in the given order.

    Args:
        engine: the process's engine.
        capabilities: one per host interface the guests may import.

    Raises:
        EngineError: two capabilities have the same name.
    """
    chosen: list[Capability] = []
    seen: set[str] = set()
    for capability in capabilities:
        if capability.name in seen:
            raise EngineError(f"two capabilities implement {capability.name!r}")
        seen.add(capability.name)
        chosen.append(capability)
    linker = Linker(engine.wasmtime)
    linker.add_wasip2()
    linker.allow_shadowing = True
    with linker.root() as plain_root:
        # Every host function gets its stable name (``interface#function``) for the invocation journal.
        root = naming_instance(plain_root)
        define_wasi_overrides(root, engine.wasip2_version)
        for capability in chosen:
            with linking_capability(capability.name):
                capability.link(root)
    linker.allow_shadowing = False
    return linker


def unresolved_import(engine: WasmEngine, component: Component, exc: wasmtime.WasmtimeError) -> str:
    """The import a failed link could not resolve: the one of the component's own import names (its type,
    not the message's prose) that wasmtime's error quotes; "" when none is."""
    text = str(exc)
    for name in component.type.imports(engine.wasmtime):
        if f"`{name}`" in text and len(name) <= _MAX_IMPORT_NAME_CHARS:
            return name
    return ""
