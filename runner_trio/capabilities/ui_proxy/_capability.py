"""``alga:extension/ui-proxy``: calls from an extension to its host app's routes, behind ``cap:ui.proxy``.

The glue between the WIT and a :class:`UiProxyBackend`. Not granted: ``denied``; granted but no backend
(``UI_PROXY_BASE_URL`` unset): ``route-not-found``, as the reference answers. The install's ``api_key`` secret,
when the invocation's envelope holds one, goes with the call (the backend sends it as ``x-api-key``).
"""

from __future__ import annotations

from typing import Final, Protocol, final

from ...engine import Err, HostScope, Invocation, LinkerInstanceBuilder, Ok, call_backend, host_function
from .._errors import HostCallError
from .._unit import CapabilityBase, aclose_backend, denied, guest_error, interface_name

__all__ = ["API_KEY_SECRET", "PROXY_ERRORS", "UiProxyBackend", "UiProxyCapability"]

PROXY_ERRORS: Final = frozenset({"route-not-found", "denied", "bad-request", "internal"})
API_KEY_SECRET: Final = "api_key"  # noqa: S105 (a secret's name, not a secret)
"""The secret whose value a call carries as ``x-api-key`` (the reference's name; host apps check it)."""


class UiProxyBackend(Protocol):
    """Calls ``route`` (GET without payload, POST with one); raises :class:`HostCallError` with a
    ``proxy-error`` case. ``api_key`` is the install's ``api_key`` secret, when it has one."""

    async def call_route(
        self, scope: HostScope, route: str, payload: bytes | None, *, api_key: str | None = None
    ) -> bytes: ...


@final
class UiProxyCapability(CapabilityBase):
    """``call-route(route, payload: option<list<u8>>) -> result<list<u8>, proxy-error>``.

    Args:
        backend: the proxy; None answers every granted call ``route-not-found``.
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
        if not invocation.allows(self.grant):
            return denied(invocation, Err("denied"))
        if backend is None:
            # Counted with the refusals; the variant is the reference's, which guests already handle.
            return denied(invocation, Err("route-not-found"))
        try:
            body = call_backend(invocation, _call, backend, invocation, route, payload)
        except HostCallError as exc:
            return guest_error(invocation, exc, PROXY_ERRORS)
        return Ok(bytes(body))


async def _call(backend: UiProxyBackend, invocation: Invocation, route: str, payload: bytes | None) -> bytes:
    api_key = await _api_key(invocation)
    return await backend.call_route(invocation.host_scope, route, payload, api_key=api_key)


async def _api_key(invocation: Invocation) -> str | None:
    """The invocation's ``api_key`` secret; None without secrets, without that key, or once expired.

    Read whether or not ``cap:secrets.get`` is granted, as the reference does: the key authenticates the
    runner's call to the host app, the guest never sees it.
    """
    secrets = invocation.secrets
    if secrets is None:
        return None
    try:
        return await secrets.get(API_KEY_SECRET) or None
    except HostCallError:
        return None
