"""The http unit's settings: ``EXT_EGRESS_ALLOWLIST``, parsed once at start into the fetcher's policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .._unit import Capability, Hooks
from ._capability import HttpCapability
from ._egress import EgressPolicy
from ._fetch import GuestFetcher

__all__ = ["HttpSettings", "configure", "defaults"]


class HttpSettings(Protocol):
    """What the http unit reads of the runner's settings."""

    @property
    def egress_allowlist(self) -> Sequence[str]: ...


def configure(settings: HttpSettings, hooks: Hooks) -> tuple[Capability, ...]:
    """The http capability with a fetcher under the allowlist; refusals are reported to ``hooks``.

    Raises:
        EgressEntryError: an allowlist entry is malformed.
    """
    policy = EgressPolicy.parse(settings.egress_allowlist)
    return (HttpCapability(GuestFetcher(policy, on_denied=hooks.on_egress_denied)),)


def defaults() -> tuple[Capability, ...]:
    """What a Linker has when nothing is configured (no fetcher: every request ``not-allowed``)."""
    return (HttpCapability(),)
