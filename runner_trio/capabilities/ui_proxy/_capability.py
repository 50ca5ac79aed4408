"""``alga:extension/ui-proxy``: calls from an extension to its host app's routes, behind ``cap:ui.proxy``.

The glue between the WIT and a :class:`UiProxyBackend`; not granted, or no backend: ``denied``.
"""

from __future__ import annotations

from typing import Final, Protocol, final

from ...engine import Err, HostScope, Invocation, LinkerInstanceBuilder, Ok, call_backend, host_function
from .._errors import HostCallError
from .._unit import CapabilityBase, aclose_backend, denied, guest_error, interface_name

__all__ = ["PROXY_ERRORS", "UiProxyBackend", "UiProxyCapability"]

PROXY_ERRORS: Final = frozenset({"route-not-found", "denied", "bad-request", "internal"})


class UiProxyBackend(Protocol):
    """Calls ``route`` (GET without payload, POST with one); raises :class:`HostCallError` with a
    ``proxy-error`` case."""

    async def call_route(self, scope: HostScope, route: str, payload: bytes | None) -> bytes: ...


@final
class UiProxyCapability(CapabilityBase):
    """``call-route(route, payload: option<list<u8>>) -> result<list<u8>, proxy-error>``.

    Args:
        backend: the proxy; None answers every call ``denied``.
    """

    name = "ui-proxy"
    grant: str | None = "cap:ui.proxy"

    def __init__(self, backend: UiProxyBackend | None = None) -> None:
        self.backend = backend

    async def aclose(self) -> None:
        await aclose_backend(self.backend)

    def link(self, root: LinkerInstanceBuilder) -> None:
        with root.add_instance(interface_name(self.name)) as instance:
            instance.add_func("call-route", host_function(self.call_route))

    def call_route(self, invocation: Invocation, route: str, payload: bytes | None) -> Ok | Err:
        backend = self.backend
        if backend is None or not invocation.allows(self.grant):
            return denied(invocation, Err("denied"))
        try:
            body = call_backend(invocation, backend.call_route, invocation.host_scope, route, payload)
        except HostCallError as exc:
            return guest_error(invocation, exc, PROXY_ERRORS)
        return Ok(bytes(body))
