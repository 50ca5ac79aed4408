"""``alga:extension/context``: the invocation's identifiers, always granted (``cap:context.read``)."""

from __future__ import annotations

from typing import Final, final

from wasmtime.component import Record

from ._base import LinkerInstanceBuilder, host_function, interface_name, wit_record
from ._invocation import Invocation

__all__ = ["ContextCapability"]

CONTEXT_GRANT: Final = "cap:context.read"
"""Always granted (so :attr:`ContextCapability.grant` is None)."""


@final
class ContextCapability:
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
