"""Errors of the gateway.

The tree::

    GatewayError                     anything the gateway refuses or fails at
    ├── SettingsError                an environment setting is unknown or invalid (.setting names it)
    ├── RegistryError                the registry database failed
    │   ├── RecordNotFound           no such tenant/user/token/extension/version/install
    │   └── RecordConflict           a unique record already exists, or a reference is dangling
    └── ApiError                     a refusal answered over HTTP as ``{"error": code, ...}`` with ``status``
        ├── InvalidRequest           400, with ``fields`` {json-path: message}
        ├── Unauthorized             401
        ├── Forbidden                403
        ├── NotFound                 404
        ├── Conflict                 409
        ├── PayloadTooLarge          413
        ├── RateLimited              429, with ``retry_after`` seconds
        ├── QuotaExceeded            429 ``quota_exceeded``: a tenant budget is used up for its period
        └── UpstreamError            502/503/504 from the runner hop

``code`` is stable and goes on the wire; ``message`` is for humans and never carries secret values.
"""

from __future__ import annotations

from collections.abc import Mapping


class GatewayError(Exception):
    """Base of every gateway error."""

    code: str = "gateway_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SettingsError(GatewayError):
    """A setting from the environment is unknown or has an invalid value."""

    code = "invalid_setting"

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class RegistryError(GatewayError):
    """The registry database could not complete an operation."""

    code = "registry_error"


class RecordNotFound(RegistryError):
    code = "not_found"


class RecordConflict(RegistryError):
    code = "conflict"


class ApiError(GatewayError):
    """A refusal with an HTTP status; the body is ``{"error": code, "message": ..., **extra}``."""

    status: int = 500

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        status: int | None = None,
        extra: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message or code)
        self.code = code
        if status is not None:
            self.status = status
        self.extra: dict[str, object] = dict(extra or {})
        self.headers: dict[str, str] = dict(headers or {})
        self.has_message = message is not None

    def body(self, request_id: str | None = None) -> dict[str, object]:
        """The JSON body of the refusal."""
        out: dict[str, object] = {"error": self.code}
        if self.has_message:
            out["message"] = self.message
        out.update(self.extra)
        if request_id is not None:
            out["requestId"] = request_id
        return out


class InvalidRequest(ApiError):
    status = 400

    def __init__(self, fields: Mapping[str, str], code: str = "invalid_request") -> None:
        super().__init__(code, extra={"fields": dict(fields)})
        self.fields = dict(fields)


class Unauthorized(ApiError):
    status = 401

    def __init__(self, code: str = "unauthorized", message: str | None = None) -> None:
        super().__init__(code, message, headers={"www-authenticate": 'Bearer realm="alga-ext"'})


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__("payload_too_large", f"request body exceeds {limit} bytes", extra={"limit": limit})


class RateLimited(ApiError):
    status = 429

    def __init__(self, retry_after: int, code: str = "rate_limited") -> None:
        super().__init__(code, headers={"retry-after": str(retry_after)}, extra={"retryAfter": retry_after})
        self.retry_after = retry_after


class UpstreamError(ApiError):
    """The runner hop failed: 502 ``bad_gateway``, 503 ``runner_unavailable`` or 504 ``gateway_timeout``."""

    status = 502


class QuotaExceeded(ApiError):
    """429 ``quota_exceeded``: the tenant used its budget ``budget`` for the current ``period`` (a fixed UTC minute,
    hour or day); ``retry_after_s`` is when that period ends (also the ``Retry-After`` header)."""

    status = 429

    def __init__(self, *, budget: str, limit: float, used: float, period: str, retry_after_s: int) -> None:
        super().__init__(
            "quota_exceeded", f"the tenant's {budget} budget per {period} is used up",
            extra={"budget": budget, "limit": _number(limit), "used": _number(used), "period": period,
                   "retry_after_s": retry_after_s},
            headers={"retry-after": str(retry_after_s)},
        )
        self.budget = budget
        self.retry_after_s = retry_after_s


def _number(value: float) -> float | int:
    """An integral float as an int (``1000``, not ``1000.0``), for JSON that people read."""
    return int(value) if float(value).is_integer() else value
