"""``alga:extension/context``: the invocation's identifiers, always granted (``cap:context.read``)."""

from __future__ import annotations

from typing import Final, final

from wasmtime.component import Record

from ..engine import Invocation, LinkerInstanceBuilder, host_function, wit_record
from ._unit import Capability, CapabilityBase, Hooks, interface_name

__all__ = ["ContextCapability", "configure", "defaults"]

CONTEXT_GRANT: Final = "cap:context.read"
"""Always granted (so :attr:`ContextCapability.grant` is None)."""


def configure(settings: object, hooks: Hooks) -> tuple[Capability, ...]:
    """Nothing to read: the context comes with each invocation."""
    return (ContextCapability(),)


def defaults() -> tuple[Capability, ...]:
    """The capability as a Linker has it when nothing is configured (the same: it needs no backend)."""
    return (ContextCapability(),)


@final
class ContextCapability(CapabilityBase):
    """``get-context() -> context-data`` from :attr:`Invocation.context`."""

    name = "context"
    grant: str | None = None

    def link(self, root: LinkerInstanceBuilder) -> None:
        with root.add_instance(interface_name(self.name)) as instance:
            instance.add_func("get-context", host_function(self.get_context))

    @staticmethod
    def get_context(invocation: Invocation) -> Record:
        context = invocation.context
        return wit_record(
            request_id=context.request_id,
            tenant_id=context.tenant_id,
            extension_id=context.extension_id,
            install_id=context.install_id,
            version_id=context.version_id,
        )
