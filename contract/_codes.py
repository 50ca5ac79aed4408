"""The codes both services speak: the runner's error codes, the guest failure kinds, the invocation outcomes.

An ``error`` on the wire is ``"<code>"`` or ``"<code>: <detail>"`` (the reference runner's form). For
``execute_failed`` the detail starts with the failure kind (``execute_failed: timeout``), which is how a
gateway tells a guest that ran out of time from one that trapped without reading prose.
"""

from __future__ import annotations

from enum import StrEnum, unique
from typing import Final

__all__ = ["ERROR_SEPARATOR", "ErrorCode", "FailureKind", "Outcome", "format_error", "split_error"]

ERROR_SEPARATOR: Final = ": "


@unique
class ErrorCode(StrEnum):
    """Every ``error`` code a runner answers with (in the execute result, or as an HTTP error body)."""

    INVALID_REQUEST = "invalid_request"
    """The body is not JSON or a field is malformed (HTTP 400 with ``field``)."""
    UNAUTHORIZED = "unauthorized"
    """No or a wrong ``Authorization: Bearer <RUNNER_SERVICE_TOKEN>`` (HTTP 401)."""
    MISSING_ROUTING_HEADERS = "missing_routing_headers"
    ROUTING_MISMATCH = "routing_mismatch"
    UNKNOWN_CAPABILITIES = "unknown_capabilities"
    BUNDLE_FETCH_FAILED = "bundle_fetch_failed"
    SECRET_DECRYPT_FAILED = "secret_decrypt_failed"  # noqa: S105 - an error code, not a secret
    OVERLOADED = "overloaded"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    """The request body exceeds the runner's cap (``RUNNER_MAX_REQUEST_BODY_BYTES``, the detail names it; 413)."""
    BODY_TOO_LARGE_FOR_MEMORY = "body_too_large_for_memory"
    """The guest ran out of memory while handling a large request body; the detail names ``limits.memory_mb``
    (413). Only answered when the runner observes memory (``RUNNER_OBSERVE_MEMORY``)."""
    EXECUTE_FAILED = "execute_failed"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    """The key was already used for a different request within its TTL (409)."""
    IDEMPOTENCY_KEY_IN_PROGRESS = "idempotency_key_in_progress"
    """The key's first request is still running (here or on another runner) past this one's deadline (409)."""
    IDEMPOTENCY_KEY_ABANDONED = "idempotency_key_abandoned"
    """The runner that claimed the key stopped before recording a result; it is never run again (409)."""
    IDEMPOTENCY_STORE_UNAVAILABLE = "idempotency_store_unavailable"
    """The shared idempotency store (Redis, SQLite) cannot be reached; the guest did not run (503)."""
    INTERNAL_ERROR = "internal_error"
    CONFIG_ERROR = "config_error"
    """A setting is invalid: raised at start-up, never answered to a request."""


@unique
class FailureKind(StrEnum):
    """Why a guest produced no response: the detail of ``execute_failed``."""

    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    TRAP = "trap"
    LINK = "link"
    RESPONSE = "response"
    """The guest answered something the contract cannot carry (e.g. a body over the cap)."""


@unique
class Outcome(StrEnum):
    """The ``outcome`` label of ``runner_invocations_total``: every invocation counts under exactly one."""

    OK = "ok"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    TRAP = "trap"
    DENIED = "denied"
    BUNDLE_ERROR = "bundle_error"
    BAD_REQUEST = "bad_request"
    OVERLOADED = "overloaded"


def format_error(code: ErrorCode | str, detail: str | None = None) -> str:
    """``code`` or ``code: detail``, the ``error`` string of an execute result."""
    return f"{code}{ERROR_SEPARATOR}{detail}" if detail else str(code)


def split_error(error: str) -> tuple[ErrorCode | None, str | None]:
    """``(code, detail)`` of an ``error`` string; the code is ``None`` when it is not one of ours."""
    head, sep, detail = error.partition(":")
    try:
        code: ErrorCode | None = ErrorCode(head.strip())
    except ValueError:
        code = None
    return code, (detail.strip() or None) if sep else None
