"""The platform unit's settings: the platform's internal API and its key, shared by four interfaces."""

from __future__ import annotations

from typing import Protocol

from .._unit import Capability, Hooks
from ._capability import ClientsCapability, InvoicingCapability, SchedulerCapability, ServicesCapability
from ._client import PlatformClient

__all__ = ["PlatformSettings", "configure", "defaults"]


class PlatformSettings(Protocol):
    """What the platform unit reads of the runner's settings."""

    @property
    def platform_api_url(self) -> str | None: ...

    @property
    def platform_auth_key(self) -> str | None: ...


def configure(settings: PlatformSettings, hooks: Hooks) -> tuple[Capability, ...]:
    """``scheduler``, ``invoicing``, ``clients`` and ``services`` over one client of the platform API;
    without ``RUNNER_PLATFORM_API_URL`` each answers its denial."""
    client = (
        PlatformClient(settings.platform_api_url, settings.platform_auth_key) if settings.platform_api_url else None
    )
    return (
        SchedulerCapability(client),
        InvoicingCapability(client),
        ClientsCapability(client),
        ServicesCapability(client),
    )


def defaults() -> tuple[Capability, ...]:
    """What a Linker has when nothing is configured (no client: each answers its denial)."""
    return (SchedulerCapability(), InvoicingCapability(), ClientsCapability(), ServicesCapability())
