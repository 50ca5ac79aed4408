"""``/v1/execute`` as typed values: what the gateway sends a runner, and what the runner answers.

The values are in normal form when they come out of :func:`decode_execute_request` (and the gateway builds
them that way): ``content_hash`` the lower-case bare hex, ``method`` upper case, ``path`` starting with ``/``,
header names lower case, capability names trimmed and lower case. ``encode(decode(x))`` is the identity on
such values. The JSON codec is in ``_codec``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from ._codes import ErrorCode, FailureKind, format_error, split_error

__all__ = ["ExecuteRequest", "ExecuteResult", "HttpRequest", "Limits", "RequestContext", "UserInfo"]


@dataclass(frozen=True)
class RequestContext:
    """Who calls which bundle: ``context`` of the request."""

    tenant_id: str
    extension_id: str
    content_hash: str  # bare lower-case hex
    request_id: str | None = None
    install_id: str | None = None
    version_id: str | None = None
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpRequest:
    """The guest's request: ``http`` of the request. ``body`` is ``None`` for no body, ``b""`` for an empty one."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes | None

    @property
    def url(self) -> str:
        """``path`` + ``?`` + urlencoded ``query``: what the guest sees as ``http-request.url``."""
        return f"{self.path}?{urlencode(dict(self.query))}" if self.query else self.path


@dataclass(frozen=True)
class Limits:
    """``limits`` of the request; ``None`` leaves the runner's default."""

    timeout_ms: int | None = None
    memory_mb: int | None = None
    fuel: int | None = None


@dataclass(frozen=True)
class UserInfo:
    """The signed-in user the call is made for: ``user`` of the request (``company_name`` reads as ``client_name``)."""

    user_id: str
    user_email: str
    user_name: str
    user_type: str
    client_name: str
    client_id: str | None = None
    additional_fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecuteRequest:
    """The body of ``POST /v1/execute``."""

    context: RequestContext
    http: HttpRequest
    limits: Limits
    providers: frozenset[str]
    secret_envelope: Mapping[str, Any] | None
    user: UserInfo | None


@dataclass(frozen=True)
class ExecuteResult:
    """What ``/v1/execute`` answers (always with HTTP 200).

    ``error`` is ``None`` when the guest answered (``status`` is then the guest's); otherwise the runner failed
    and ``error`` is ``"<code>"`` or ``"<code>: <detail>"`` (see :class:`ErrorCode`), ``status`` its HTTP
    status. Read it through :attr:`error_code`, :attr:`failure_kind` and :attr:`timed_out`, never as prose.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes | None
    error: str | None = None

    @classmethod
    def failure(cls, status: int, code: ErrorCode, detail: str | None = None) -> ExecuteResult:
        """A runner-side failure: no headers, no body, ``error`` = ``code[: detail]``."""
        return cls(status, {}, None, format_error(code, detail))

    @property
    def error_code(self) -> ErrorCode | None:
        """The code of ``error``; ``None`` when the guest answered or the code is not one of the contract's."""
        return None if self.error is None else split_error(self.error)[0]

    @property
    def failure_kind(self) -> FailureKind | None:
        """For ``execute_failed``, why the guest produced no response (the first word of the detail)."""
        if self.error is None:
            return None
        code, detail = split_error(self.error)
        if code is not ErrorCode.EXECUTE_FAILED or detail is None:
            return None
        try:
            return FailureKind(detail.partition(":")[0].strip())
        except ValueError:
            return None

    @property
    def timed_out(self) -> bool:
        """Whether the runner reports that the guest ran out of time (504, or ``execute_failed: timeout``)."""
        return self.error is not None and (self.status == 504 or self.failure_kind is FailureKind.TIMEOUT)
