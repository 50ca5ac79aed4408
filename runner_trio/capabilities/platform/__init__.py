"""The platform capabilities: ``scheduler``, ``invoicing``, ``clients`` and ``services``, forwarded to the
platform's internal API.

One folder holds the whole unit: ``_client.py`` (:class:`PlatformClient`, the wire of each operation),
``_capability.py`` (the WIT glue shared by the four interfaces, and the :class:`PlatformBackend` protocol)
and ``_configure.py`` (:func:`configure`, reading ``RUNNER_PLATFORM_*`` once). Its guest-visible errors are
:class:`HostCallError` cases, or ``success: false`` records for the functions that return one.
"""

from __future__ import annotations

from ._capability import (
    READ_ERRORS,
    SCHEDULER_ERRORS,
    ClientsCapability,
    InvoicingCapability,
    Operation,
    PlatformBackend,
    PlatformCapability,
    SchedulerCapability,
    ServicesCapability,
)
from ._client import PlatformClient, camelize, kebabize
from ._configure import PlatformSettings, configure, defaults

__all__ = [
    "READ_ERRORS",
    "SCHEDULER_ERRORS",
    "ClientsCapability",
    "InvoicingCapability",
    "Operation",
    "PlatformBackend",
    "PlatformCapability",
    "PlatformClient",
    "PlatformSettings",
    "SchedulerCapability",
    "ServicesCapability",
    "camelize",
    "configure",
    "defaults",
    "kebabize",
]
