"""The Linker: built once, shared by every thread (a Store per invocation is what isolates them).

Contents: wasmtime's WASIp2 (never ``wasi:http``: it would let a guest reach the network around the egress
policy), this runner's clock and poll overrides (``_wasi.py``), and every interface of the
``alga:extension/runner`` world, each defined by its capability. Interfaces are defined explicitly rather
than with ``define_unknown_imports_as_traps``, which replaced real WASI functions with traps.
"""

from __future__ import annotations

from collections.abc import Iterable

from wasmtime.component import Linker

from ..capabilities import WORLD_INTERFACES, Capability, default_capabilities, interface_name
from ._engine import WasmEngine
from ._errors import EngineError
from ._wasi import define_wasi_overrides

__all__ = ["build_linker"]


def build_linker(engine: WasmEngine, capabilities: Iterable[Capability] = ()) -> Linker:
    """The shared Linker for ``engine``.

    Args:
        engine: the process's engine.
        capabilities: capabilities that replace the defaults of the same name (the defaults answer
            ``context``, ``logging`` and ``user`` and deny every other interface).

    Raises:
        EngineError: a capability names an interface the world does not have, or one is given twice.
    """
    chosen = {capability.name: capability for capability in default_capabilities()}
    seen: set[str] = set()
    for capability in capabilities:
        if capability.name not in WORLD_INTERFACES:
            raise EngineError(f"capability {capability.name!r} is not an interface of the runner world")
        if capability.name in seen:
            raise EngineError(f"two capabilities implement {capability.name!r}")
        seen.add(capability.name)
        chosen[capability.name] = capability
    linker = Linker(engine.wasmtime)
    linker.add_wasip2()
    linker.allow_shadowing = True
    with linker.root() as root:
        define_wasi_overrides(root, engine.wasip2_version)
        # Guests import the types-only interface their world `use`s; it needs a (empty) definition.
        with root.add_instance(interface_name("types")):
            pass
        for name in WORLD_INTERFACES:
            chosen[name].link(root)
    linker.allow_shadowing = False
    return linker
