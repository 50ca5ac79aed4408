"""Errors of the runner, and how each one reaches the wire.

The tree::

    RunnerError                       base; ``status`` and ``code`` are what /v1/execute answers
    ├── ConfigError                   a setting is unknown or invalid (start-up only; names the variable)
    ├── WorkersFailed                 a worker process died during the runner's first start (start-up only)
    ├── RequestInvalid                the /v1/execute body is malformed (HTTP 400, names the field)
    ├── MissingRoutingHeaders         x-alga-tenant / x-alga-extension absent          status 400
    ├── UnknownCapabilities           providers names a capability that does not exist status 400
    ├── BundleUnavailable             fetch, hash, signature or archive failure        status 502
    ├── SecretDecryptFailed           the secret envelope cannot be opened             status 500
    ├── Overloaded                    no slot within the queue bounds                  status 429
    ├── BodyTooLarge                  request or response body over its cap            status 413 / 500
    │   └── BodyTooLargeForMemory     the guest ran out of memory holding the request body  status 413
    └── ExecuteFailed                 the guest failed: kind timeout (504), memory_limit, trap, link (500)

Codes follow the reference runner's contract: ``error`` is ``"<code>"`` or ``"<code>: <detail>"``.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BodyTooLarge",
    "BodyTooLargeForMemory",
    "BundleUnavailable",
    "ConfigError",
    "ExecuteFailed",
    "MissingRoutingHeaders",
    "Overloaded",
    "RequestInvalid",
    "RunnerError",
    "SecretDecryptFailed",
    "UnknownCapabilities",
    "WorkersFailed",
]


class RunnerError(Exception):
    """Base of the runner's errors. ``status`` is the execute-response status, ``code`` the error code."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.code)
        self.detail = detail

    @property
    def status_code(self) -> int:
        return self.status

    @property
    def wire_error(self) -> str:
        return f"{self.code}: {self.detail}" if self.detail else self.code


class ConfigError(RunnerError):
    code = "config_error"

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class RequestInvalid(RunnerError):
    """The request body is not a valid execute request. ``field`` is a dotted path into the JSON."""

    status = 400
    code = "invalid_request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class MissingRoutingHeaders(RunnerError):
    status = 400
    code = "missing_routing_headers"


class UnknownCapabilities(RunnerError):
    status = 400
    code = "unknown_capabilities"


class BundleUnavailable(RunnerError):
    status = 502
    code = "bundle_fetch_failed"


class SecretDecryptFailed(RunnerError):
    status = 500
    code = "secret_decrypt_failed"


class WorkersFailed(RunnerError):
    """A worker process exited before it was ready while the runner started (its own log line says why)."""

    code = "workers_failed"


class Overloaded(RunnerError):
    status = 429
    code = "overloaded"


class BodyTooLarge(RunnerError):
    status = 413
    code = "payload_too_large"


class BodyTooLargeForMemory(BodyTooLarge):
    """The guest hit its memory cap (observed by the runner) while handling a request with a large body."""

    code = "body_too_large_for_memory"

    def __init__(self, body_bytes: int, memory_mb: int) -> None:
        super().__init__(
            f"the request body ({body_bytes} bytes) does not fit the guest's memory: limits.memory_mb is "
            f"{memory_mb}; raise limits.memory_mb or send a smaller body"
        )
        self.body_bytes = body_bytes
        self.memory_mb = memory_mb


class ExecuteFailed(RunnerError):
    """The guest did not produce a response. ``kind`` is timeout, memory_limit, trap or link."""

    code = "execute_failed"
    KINDS: ClassVar[frozenset[str]] = frozenset({"timeout", "memory_limit", "trap", "link", "response"})

    def __init__(self, kind: str, message: str = "", *, subject: str = "") -> None:
        # ``subject`` (the unresolved import of a link failure) follows the kind: ``execute_failed: link: <import>``.
        super().__init__(f"{kind}: {subject}" if subject else kind)
        self.kind = kind
        self.message = message

    @property
    def status_code(self) -> int:
        return 504 if self.kind == "timeout" else 500
