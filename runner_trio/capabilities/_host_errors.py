"""What a host backend tells the glue: the invocation scope it acts for, and the errors a guest may see.

The tree::

    HostCallError            a guest-visible failure; ``variant`` is the exact WIT error case to return
    SecretEnvelopeError      the invocation's secret envelope cannot be opened (the runner answers 500
                             ``secret_decrypt_failed``; it never reaches the guest)

Anything else a backend raises is a host bug: the glue turns it into a trap, never into an error variant.
Messages never contain secret values, request bodies or storage values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final, final

import trio

__all__ = [
    "HOST_ERROR_VARIANTS",
    "HostCallError",
    "HostScope",
    "HostUser",
    "ScopeUsage",
    "SecretEnvelopeError",
]

HOST_ERROR_VARIANTS: Final = frozenset(
    {
        # http-error
        "invalid-url",
        "not-allowed",
        "transport",
        "internal",
        # storage-error, secret-error
        "missing",
        "conflict",
        "denied",
        "expired",
        # proxy-error
        "route-not-found",
        "bad-request",
        # user-error
        "not-available",
        # scheduler-error
        "not-found",
        "validation-failed",
        "quota-exceeded",
        # client-read-error, service-read-error
        "invalid-input",
    }
)
"""Every error case of the ``alga:extension`` WIT enums (``not-allowed`` and ``internal`` are shared)."""


class HostCallError(Exception):
    """A failure the guest sees as the WIT error case ``variant``.

    Args:
        variant: the kebab-case WIT enum case, e.g. ``"not-allowed"``; must be one of
            :data:`HOST_ERROR_VARIANTS` (a typo here would otherwise surface as a trap far away).
        detail: a short, secret-free explanation for logs.
    """

    def __init__(self, variant: str, detail: str = "") -> None:
        if variant not in HOST_ERROR_VARIANTS:
            raise ValueError(f"unknown WIT error variant {variant!r}")
        super().__init__(f"{variant}: {detail}" if detail else variant)
        self.variant = variant
        self.detail = detail


class SecretEnvelopeError(Exception):
    """The secret envelope of an invocation cannot be opened (bad key, tampering, malformed, vault failure).

    ``code`` is stable (``decrypt_failed``, ``envelope_invalid``, ``unsupported_algorithm``, ``invalid_key``,
    ``vault_not_configured``, ``vault_failed``); the runner maps the whole class to ``secret_decrypt_failed``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@final
class ScopeUsage:
    """Mutable counters of one invocation, kept on its :class:`HostScope` (e.g. outbound requests made)."""

    __slots__ = ("http_requests",)

    def __init__(self) -> None:
        self.http_requests = 0

    def __repr__(self) -> str:
        return f"ScopeUsage(http_requests={self.http_requests})"


@dataclass(frozen=True, slots=True)
class HostUser:
    """The end user an invocation acts for, when the gateway sent one (forwarded for platform RBAC)."""

    user_id: str
    user_type: str
    user_email: str | None = None


@dataclass(frozen=True, slots=True)
class HostScope:
    """Who a host call acts for, and until when. Build one per invocation and pass the same object to every call.

    Attributes:
        tenant_id: the invocation's tenant.
        extension_id: the invocation's extension.
        install_id: the install, when the gateway sent one.
        request_id: the request id, forwarded to upstream services for correlation.
        deadline: the invocation's deadline on the ``trio.current_time()`` clock; no host call outlives it.
        version_id: the extension version, when known.
        user: the end user, when known.
        usage: per-invocation counters (request caps); shared by every call made with this scope.
    """

    tenant_id: str
    extension_id: str
    install_id: str | None = None
    request_id: str | None = None
    deadline: float = math.inf
    version_id: str | None = None
    user: HostUser | None = None
    usage: ScopeUsage = field(default_factory=ScopeUsage, compare=False, repr=False)

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once it has passed). Needs a running trio loop."""
        return self.deadline - trio.current_time()

    def bounded(self, timeout: float) -> float:
        """``timeout`` cut to what is left of the invocation, never below zero."""
        return max(0.0, min(timeout, self.remaining()))
