"""The shape every capability has, and the shared glue its host functions use.

A capability is one unit per host interface of the ``alga:extension/runner`` world, after Spin's "factors":

* ``configure(settings, hooks)`` (a module-level function of each unit) reads and validates the unit's
  settings once at start and builds its backends; it returns the unit's capabilities (``defaults()``
  returns them without backends);
* ``link(root)`` defines the interface's host functions on the shared Linker, once;
* ``prepare(invocation, inputs)`` makes the per-invocation state before the guest runs (the secrets unit
  opens the envelope; most units have none and return the invocation as it is);
* ``aclose()`` releases the backends at shutdown.

Host functions read the per-invocation state from ``current_invocation()`` (the engine binds it to the guest's
thread). A capability that is not granted, or has no backend, answers its interface's denial as a value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from ..engine import Capability as EngineCapability
from ..engine import Err, Invocation
from ._errors import HostCallError

__all__ = [
    "PACKAGE",
    "Capability",
    "CapabilityBase",
    "Hooks",
    "InvocationInputs",
    "aclose_backend",
    "denied",
    "guest_error",
    "interface_name",
]

PACKAGE: Final = "alga:extension"
"""The WIT package (no version): interfaces are linked as ``alga:extension/<name>``."""

T = TypeVar("T")

_log = logging.getLogger("runner_trio.capabilities")


@dataclass(frozen=True, slots=True)
class Hooks:
    """The runner's callbacks a capability reports to (metrics); every one is optional.

    Attributes:
        on_egress_denied: called with the reason each time a guest request is refused as ``not-allowed``.
    """

    on_egress_denied: Callable[[str], None] | None = None


@dataclass(frozen=True, slots=True)
class InvocationInputs:
    """What the runner received for one invocation that a capability prepares its state from.

    Attributes:
        secret_envelope: the ``secret_envelope`` of ``/v1/execute`` (None: no secrets).
    """

    secret_envelope: Mapping[str, Any] | None = None


class Capability(EngineCapability, Protocol):
    """One interface of the ``alga:extension/runner`` world.

    Attributes:
        name: the interface it implements, e.g. ``"http"`` (linked as ``alga:extension/http``).
        grant: the capability that enables it, e.g. ``"cap:http.fetch"``; None means always granted.
    """

    grant: str | None

    async def prepare(self, invocation: Invocation, inputs: InvocationInputs) -> Invocation:
        """The invocation with this capability's per-invocation state (before the guest runs)."""
        ...

    async def aclose(self) -> None:
        """Release the backends (at shutdown)."""
        ...


class CapabilityBase:
    """Defaults of the unit shape for a capability without per-invocation state or backends to close."""

    async def prepare(self, invocation: Invocation, inputs: InvocationInputs) -> Invocation:
        return invocation

    async def aclose(self) -> None:
        return None


def interface_name(name: str) -> str:
    """``"http"`` -> ``"alga:extension/http"``."""
    return f"{PACKAGE}/{name}"


async def aclose_backend(backend: object) -> None:
    """Close ``backend`` when it has ``aclose`` (test doubles and policy-only backends need not)."""
    aclose = getattr(backend, "aclose", None)
    if aclose is not None:
        await aclose()


def guest_error(invocation: Invocation, exc: HostCallError, cases: frozenset[str]) -> Err:
    """A backend's :class:`HostCallError` as the WIT ``err`` case of an enum with ``cases`` (and counted).

    A variant the interface does not have becomes ``internal`` (every ``alga:extension`` error enum that a
    backend can produce has it) rather than a conversion failure, which would trap the guest.
    """
    invocation.counters.add("host_errors")
    variant = exc.variant if exc.variant in cases else "internal"
    if variant == "internal":
        # The guest only sees "internal"; the operator needs the why (backend details never hold secret values).
        ctx = invocation.context
        _log.warning(
            "host call failed internally tenant=%s extension=%s request=%s: %s",
            ctx.tenant_id,
            ctx.extension_id,
            ctx.request_id,
            exc.detail or exc.variant,
        )
    return Err(variant)


def denied(invocation: Invocation, payload: T) -> T:
    """Count a refused call and return ``payload`` (the interface's denial value)."""
    invocation.counters.add("denied_calls")
    return payload
