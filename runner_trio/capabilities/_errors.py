"""Errors of the capabilities: one tree for every host interface.

The tree::

    CapabilityError                  base class; ``code`` is stable
    ├── HostCallError                a guest-visible failure; ``variant`` is the exact WIT error case to
    │                                return (``code`` = the variant)
    ├── SecretEnvelopeError          the invocation's secret envelope cannot be opened (``code``:
    │                                ``decrypt_failed``, ``envelope_invalid``, ``unsupported_algorithm``,
    │                                ``invalid_key``, ``vault_not_configured``, ``vault_failed``); the runner
    │                                answers 500 ``secret_decrypt_failed``, it never reaches the guest
    ├── CapabilityConfigError        a setting read at start is unusable; ``setting`` names the variable
    │   ├── EgressEntryError         an ``EXT_EGRESS_ALLOWLIST`` entry off the grammar (``egress_entry``)
    │   └── StorageConfigError       ``RUNNER_STORAGE_URL`` names no backend (``storage_config``)
    ├── InternalApiError             a platform/internal HTTP API unreachable or too slow (``internal_api``)
    └── BodyTooLarge                 a response body over its cap while being read (``body_too_large``)

``InternalApiError`` and ``BodyTooLarge`` stay inside the capabilities: backends translate them into a
``HostCallError`` (or a ``SecretEnvelopeError``) at their boundary. Anything else a backend raises is a host
bug: the glue turns it into a trap, never into an error variant. Messages never contain secret values,
request bodies or storage values.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "HOST_ERROR_VARIANTS",
    "BodyTooLarge",
    "CapabilityConfigError",
    "CapabilityError",
    "EgressEntryError",
    "HostCallError",
    "InternalApiError",
    "SecretEnvelopeError",
    "StorageConfigError",
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


class CapabilityError(Exception):
    """Base class of the capabilities' errors."""

    code: str = "capability_error"


class HostCallError(CapabilityError):
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
        self.code = variant
        self.detail = detail


class SecretEnvelopeError(CapabilityError):
    """The secret envelope of an invocation cannot be opened (bad key, tampering, malformed, vault failure).

    ``code`` is stable (see the tree); the runner maps the whole class to ``secret_decrypt_failed``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class CapabilityConfigError(CapabilityError, ValueError):
    """A capability's setting cannot be used as given (start-up only).

    Attributes:
        setting: the environment variable, e.g. ``RUNNER_STORAGE_URL``.
        problem: what is wrong with it (the message is ``"<setting>...: <problem>"``).
    """

    code = "capability_config"

    def __init__(self, setting: str, problem: str, *, message: str | None = None) -> None:
        super().__init__(message if message is not None else f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class EgressEntryError(CapabilityConfigError):
    """An ``EXT_EGRESS_ALLOWLIST`` entry does not follow the grammar; the message names the entry."""

    code = "egress_entry"

    def __init__(self, entry: str, problem: str) -> None:
        super().__init__("EXT_EGRESS_ALLOWLIST", problem, message=f"EXT_EGRESS_ALLOWLIST entry {entry!r}: {problem}")
        self.entry = entry


class StorageConfigError(CapabilityConfigError):
    """``RUNNER_STORAGE_URL`` names no backend this runner has, or cannot be used as given."""

    code = "storage_config"

    def __init__(self, problem: str) -> None:
        super().__init__("RUNNER_STORAGE_URL", problem)


class InternalApiError(CapabilityError):
    """The internal API could not be reached or did not answer in time; ``reason`` is short and secret-free."""

    code = "internal_api"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BodyTooLarge(CapabilityError):
    """A response body passed its cap while being read."""

    code = "body_too_large"
