"""The ``alga:extension/runner`` world: its interfaces, the capability list, and the Linker built from it.

Adding a capability is adding its folder (or module) with a ``configure`` function, and one line in
:data:`UNITS`; a unit that reads settings also adds its settings protocol to :class:`CapabilitySettings`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, Protocol, final

from wasmtime.component import Linker

from ..engine import Capability as EngineCapability
from ..engine import EngineError, Invocation, LinkerInstanceBuilder, WasmEngine, build_linker
from . import context, http, logging, platform, secrets, storage, ui_proxy, user
from ._unit import Capability, Hooks, InvocationInputs, interface_name
from .context import ContextCapability
from .http import HttpCapability, HttpSettings
from .logging import LoggingCapability
from .platform import (
    ClientsCapability,
    InvoicingCapability,
    PlatformSettings,
    SchedulerCapability,
    ServicesCapability,
)
from .secrets import SecretsCapability, SecretsSettings
from .storage import StorageCapability, StorageSettings
from .ui_proxy import UiProxyCapability, UiProxySettings
from .user import UserCapability, UserV2Capability

__all__ = [
    "UNITS",
    "WORLD_INTERFACES",
    "CapabilitySettings",
    "configure_capabilities",
    "default_capabilities",
    "prepare_invocation",
    "world_linker",
]

WORLD_INTERFACES: Final = (
    "context",
    "secrets",
    "http",
    "storage",
    "logging",
    "ui-proxy",
    "user",
    "user-v2",
    "scheduler",
    "invoicing",
    "clients",
    "services",
)
"""Every interface the ``runner`` world imports; the Linker defines all of them."""


class CapabilitySettings(HttpSettings, SecretsSettings, StorageSettings, UiProxySettings, PlatformSettings, Protocol):
    """Everything the capabilities read of the runner's settings (``runner_trio.Settings`` has all of it)."""


Configure = Callable[[Any, Hooks], Sequence[Capability]]

UNITS: Final[tuple[Configure, ...]] = (
    context.configure,
    secrets.configure,
    http.configure,
    storage.configure,
    logging.configure,
    ui_proxy.configure,
    user.configure,
    platform.configure,
)
"""The capability list: each unit's ``configure``, in the world's interface order."""


def configure_capabilities(settings: CapabilitySettings, hooks: Hooks | None = None) -> list[Capability]:
    """Every capability of the world, configured from ``settings`` (read and validated once, at start).

    Raises:
        CapabilityConfigError: a setting is unusable (``setting`` names it).
    """
    chosen = hooks if hooks is not None else Hooks()
    return [capability for configure in UNITS for capability in configure(settings, chosen)]


def default_capabilities() -> list[Capability]:
    """One capability per world interface, with no backends: ``context``, ``logging`` and ``user`` work, every
    other interface answers its denial. Replace entries by name to plug in backends."""
    return [
        ContextCapability(),
        SecretsCapability(),
        HttpCapability(),
        StorageCapability(),
        LoggingCapability(),
        UiProxyCapability(),
        UserCapability(),
        UserV2Capability(),
        SchedulerCapability(),
        InvoicingCapability(),
        ClientsCapability(),
        ServicesCapability(),
    ]


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
