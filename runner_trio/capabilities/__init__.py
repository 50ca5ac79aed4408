"""Host interfaces of the ``alga:extension/runner`` world: one self-contained unit per interface, one shape.

Each unit (``context``, ``user``, ``logging``, ``http``, ``storage``, ``secrets``, ``ui_proxy``, ``platform``)
owns its settings, its backends and its WIT glue, and exposes ``configure(settings, hooks)`` and ``defaults()``;
each capability it returns has ``link`` (once, on the Linker), ``prepare`` (per invocation) and ``aclose``.
The host-function glue (``host_function``, ``Ok``/``Err``, ``wit_record``, ``Invocation``, ``HostScope``) is the
engine's.

Public API::

    capabilities = configure_capabilities(settings, Hooks(on_egress_denied=...))   # at start
    linker = world_linker(engine, capabilities)                                   # once
    invocation = await prepare_invocation(capabilities, invocation, InvocationInputs(secret_envelope=...))
    Capability, CapabilityBase, Hooks, InvocationInputs, CapabilitySettings, Unit, UNITS, WORLD_INTERFACES,
    default_capabilities, PACKAGE, interface_name, guest_error, denied
    ContextCapability, LoggingCapability, UserCapability, UserV2Capability (always granted)
    SecretsCapability, HttpCapability, StorageCapability, UiProxyCapability, SchedulerCapability,
    InvoicingCapability, ClientsCapability, ServicesCapability (denied without a grant or a backend)
    HttpBackend, StorageBackend, WitStorage, UiProxyBackend, PlatformBackend (what backends implement)
    CapabilityError and its tree (``_errors.py``)

Backends are async (they run on the trio loop through ``call_backend``), act for ``invocation.host_scope`` and
raise ``HostCallError(variant)`` for a guest-visible error; anything else they raise is a host bug (a trap, then
re-raised by ``invoke()``). A unit's own backends and limits are in its subpackage (``capabilities.storage``...).
"""

from __future__ import annotations

from ._errors import (
    HOST_ERROR_VARIANTS,
    CapabilityConfigError,
    CapabilityError,
    EgressEntryError,
    HostCallError,
    SecretEnvelopeError,
    StorageConfigError,
)
from ._unit import (
    PACKAGE,
    Capability,
    CapabilityBase,
    Hooks,
    InvocationInputs,
    denied,
    guest_error,
    interface_name,
)
from ._world import (
    UNITS,
    WORLD_INTERFACES,
    CapabilitySettings,
    Unit,
    configure_capabilities,
    default_capabilities,
    prepare_invocation,
    world_linker,
)
from .context import ContextCapability
from .http import HttpBackend, HttpCapability, HttpResponseLike
from .logging import DEFAULT_MAX_LOG_EVENTS, GUEST_LOGGER, LoggingCapability
from .platform import (
    ClientsCapability,
    InvoicingCapability,
    PlatformBackend,
    SchedulerCapability,
    ServicesCapability,
)
from .secrets import SecretsCapability
from .storage import StorageBackend, StorageCapability, StorageEntry, StorageEntryLike, WitStorage
from .ui_proxy import UiProxyBackend, UiProxyCapability
from .user import UserCapability, UserV2Capability

__all__ = [
    "DEFAULT_MAX_LOG_EVENTS",
    "GUEST_LOGGER",
    "HOST_ERROR_VARIANTS",
    "PACKAGE",
    "UNITS",
    "WORLD_INTERFACES",
    "Capability",
    "CapabilityBase",
    "CapabilityConfigError",
    "CapabilityError",
    "CapabilitySettings",
    "ClientsCapability",
    "ContextCapability",
    "EgressEntryError",
    "Hooks",
    "HostCallError",
    "HttpBackend",
    "HttpCapability",
    "HttpResponseLike",
    "InvocationInputs",
    "InvoicingCapability",
    "LoggingCapability",
    "PlatformBackend",
    "SchedulerCapability",
    "SecretEnvelopeError",
    "SecretsCapability",
    "ServicesCapability",
    "StorageBackend",
    "StorageCapability",
    "StorageConfigError",
    "StorageEntry",
    "StorageEntryLike",
    "UiProxyBackend",
    "UiProxyCapability",
    "Unit",
    "UserCapability",
    "UserV2Capability",
    "WitStorage",
    "configure_capabilities",
    "default_capabilities",
    "denied",
    "guest_error",
    "interface_name",
    "prepare_invocation",
    "world_linker",
]
