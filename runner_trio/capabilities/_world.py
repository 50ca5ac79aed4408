"""The ``alga:extension/runner`` world: the capability list, its interfaces, and the Linker built from it.

Adding a capability is adding its unit (a module or a folder with ``configure`` and ``defaults``) and one line
in :data:`UNITS`; a unit that reads settings also lists its settings protocol among
:class:`CapabilitySettings`' bases, so that ``runner_trio.Settings`` is checked against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final, Protocol, final

from wasmtime.component import Linker

from ..engine import Capability as EngineCapability
from ..engine import EngineError, Invocation, LinkerInstanceBuilder, WasmEngine, build_linker
from . import context, http, logging, platform, secrets, storage, ui_proxy, user
from ._unit import Capability, Hooks, InvocationInputs, interface_name
from .http import HttpSettings
from .platform import PlatformSettings
from .secrets import SecretsSettings
from .storage import StorageSettings
from .ui_proxy import UiProxySettings

__all__ = [
    "UNITS",
    "WORLD_INTERFACES",
    "CapabilitySettings",
    "Unit",
    "configure_capabilities",
    "default_capabilities",
    "prepare_invocation",
    "world_linker",
]


class Unit(Protocol):
    """What a capability unit (``capabilities.storage``, ...) exposes."""

    def configure(self, settings: Any, hooks: Hooks) -> Sequence[Capability]:
        """The unit's capabilities, with backends built from ``settings`` (read and checked once, at start)."""
        ...

    def defaults(self) -> Sequence[Capability]:
        """The unit's capabilities without backends: what a Linker has when nothing is configured."""
        ...


UNITS: Final[tuple[Unit, ...]] = (
    context,
    secrets,
    http,
    storage,
    logging,
    ui_proxy,
    user,
    platform,
)
"""The capability list, in the order the world's interfaces are linked."""


class CapabilitySettings(HttpSettings, SecretsSettings, StorageSettings, UiProxySettings, PlatformSettings, Protocol):
    """Everything the capabilities read of the runner's settings (``runner_trio.Settings`` has all of it)."""


def default_capabilities() -> list[Capability]:
    """One capability per world interface, with no backends: ``context``, ``logging`` and ``user`` work, every
    other interface answers its denial. Replace entries by name to plug in backends."""
    return [capability for unit in UNITS for capability in unit.defaults()]


WORLD_INTERFACES: Final = tuple(capability.name for capability in default_capabilities())
"""Every interface the ``runner`` world imports (``wit/``), one per capability; the Linker defines all of them."""


def configure_capabilities(settings: CapabilitySettings, hooks: Hooks | None = None) -> list[Capability]:
    """Every capability of the world, configured from ``settings``, in :data:`WORLD_INTERFACES` order.

    Raises:
        CapabilityConfigError: a setting is unusable (``setting`` names it).
    """
    chosen = hooks if hooks is not None else Hooks()
    return [capability for unit in UNITS for capability in unit.configure(settings, chosen)]


@final
class _TypesInterface:
    """``alga:extension/types``: guests import the types-only interface their world ``use``s, so it needs an
    (empty) definition."""

    name = "types"

    def link(self, root: LinkerInstanceBuilder) -> None:
        with root.add_instance(interface_name(self.name)):
            pass


def world_linker(engine: WasmEngine, capabilities: Iterable[EngineCapability] = ()) -> Linker:
    """The Linker of the runner world for ``engine``.

    Args:
        engine: the process's engine.
        capabilities: capabilities that replace the defaults of the same name (the defaults answer
            ``context``, ``logging`` and ``user`` and deny every other interface).

    Raises:
        EngineError: a capability names an interface the world does not have, or one is given twice.
    """
    chosen: dict[str, EngineCapability] = {capability.name: capability for capability in default_capabilities()}
    seen: set[str] = set()
    for capability in capabilities:
        if capability.name not in WORLD_INTERFACES:
            raise EngineError(f"capability {capability.name!r} is not an interface of the runner world")
        if capability.name in seen:
            raise EngineError(f"two capabilities implement {capability.name!r}")
        seen.add(capability.name)
        chosen[capability.name] = capability
    return build_linker(engine, [_TypesInterface(), *(chosen[name] for name in WORLD_INTERFACES)])


async def prepare_invocation(
    capabilities: Iterable[Capability], invocation: Invocation, inputs: InvocationInputs
) -> Invocation:
    """``invocation`` with every capability's per-invocation state, in list order.

    Raises:
        SecretEnvelopeError: the secret envelope cannot be opened.
    """
    for capability in capabilities:
        invocation = await capability.prepare(invocation, inputs)
    return invocation
