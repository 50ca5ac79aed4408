"""Host interfaces of the ``alga:extension/runner`` world, one module per interface, one protocol for all.

Public API::

    Capability, LinkerInstanceBuilder, interface_name, host_function, call_backend, Ok, Err, wit_record
    Invocation, InvocationContext, UserInfo, InvocationCounters, EventSink, bind_invocation, current_invocation
    ContextCapability, LoggingCapability, UserCapability, UserV2Capability (always granted)
    SecretsCapability, HttpCapability, StorageCapability, UiProxyCapability, SchedulerCapability,
    InvoicingCapability, ClientsCapability, ServicesCapability (denied without a grant or a backend)
    HttpBackend, StorageBackend, UiProxyBackend, PlatformBackend, SecretsProvider (what backends implement)
    default_capabilities, WORLD_INTERFACES

Backends are async (they run on the trio loop through ``call_backend``), act for ``invocation.host_scope`` and
raise ``HostCallError(variant)`` for a guest-visible error; anything else they raise is a host bug (a trap, then
re-raised by ``invoke()``).
"""

from __future__ import annotations

from typing import Final

from ._base import (
    PACKAGE,
    Capability,
    Err,
    LinkerInstanceBuilder,
    Ok,
    call_backend,
    host_function,
    interface_name,
    mapping_to_record,
    record_to_mapping,
    stash_host_exception,
    take_host_exception,
    wit_record,
)
from ._host_errors import HostCallError, HostScope, HostUser
from ._invocation import (
    EVENT_LEVELS,
    EventLevel,
    EventSink,
    EventStream,
    Invocation,
    InvocationContext,
    InvocationCounters,
    SecretsProvider,
    UserInfo,
    bind_invocation,
    current_invocation,
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
from .storage import StorageBackend, StorageCapability, StorageEntry, StorageEntryLike
from .ui_proxy import UiProxyBackend, UiProxyCapability
from .user import UserCapability, UserV2Capability

__all__ = [
    "DEFAULT_MAX_LOG_EVENTS",
    "EVENT_LEVELS",
    "GUEST_LOGGER",
    "PACKAGE",
    "WORLD_INTERFACES",
    "Capability",
    "ClientsCapability",
    "ContextCapability",
    "Err",
    "EventLevel",
    "EventSink",
    "EventStream",
    "HostCallError",
    "HostScope",
    "HostUser",
    "HttpBackend",
    "HttpCapability",
    "HttpResponseLike",
    "Invocation",
    "InvocationContext",
    "InvocationCounters",
    "InvoicingCapability",
    "LinkerInstanceBuilder",
    "LoggingCapability",
    "Ok",
    "PlatformBackend",
    "SchedulerCapability",
    "SecretsCapability",
    "SecretsProvider",
    "ServicesCapability",
    "StorageBackend",
    "StorageCapability",
    "StorageEntry",
    "StorageEntryLike",
    "UiProxyBackend",
    "UiProxyCapability",
    "UserCapability",
    "UserInfo",
    "UserV2Capability",
    "bind_invocation",
    "call_backend",
    "current_invocation",
    "default_capabilities",
    "host_function",
    "interface_name",
    "mapping_to_record",
    "record_to_mapping",
    "stash_host_exception",
    "take_host_exception",
    "wit_record",
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
