"""The ui-proxy unit's settings: the host app's base URL, its key and the call timeout."""

from __future__ import annotations

from typing import Protocol

from .._unit import Capability, Hooks
from ._capability import UiProxyCapability
from ._client import UiProxyClient

__all__ = ["UiProxySettings", "configure", "defaults"]


class UiProxySettings(Protocol):
    """What the ui-proxy unit reads of the runner's settings."""

    @property
    def ui_proxy_base_url(self) -> str | None: ...

    @property
    def ui_proxy_auth_key(self) -> str | None: ...

    @property
    def ui_proxy_timeout_ms(self) -> int: ...


def configure(settings: UiProxySettings, hooks: Hooks) -> tuple[Capability, ...]:
    """The ui-proxy capability; without ``UI_PROXY_BASE_URL`` it answers every granted call
    ``route-not-found``."""
    client = (
        UiProxyClient(settings.ui_proxy_base_url, settings.ui_proxy_auth_key, settings.ui_proxy_timeout_ms / 1000)
        if settings.ui_proxy_base_url
        else None
    )
    return (UiProxyCapability(client),)


def defaults() -> tuple[Capability, ...]:
    """What a Linker has when nothing is configured (no client: every granted call ``route-not-found``)."""
    return (UiProxyCapability(),)
