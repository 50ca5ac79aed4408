"""``/v1/execute`` as typed values: what the gateway sends a runner, and what the runner answers.

The values are in normal form when they come out of :func:`decode_execute_request` (and the gateway builds
them that way): ``content_hash`` the lower-case bare hex, ``method`` upper case, ``path`` starting with ``/``,
header names lower case, capability names trimmed and lower case. ``encode(decode(x))`` is the identity on
such values. The JSON codec is in ``_codec``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode

from ._codes import ErrorCode, FailureKind, format_error, split_error

__all__ = [
    "JOURNAL_POLICIES",
    "USAGE_FIELDS",
    "ExecuteRequest",
    "ExecuteResult",
    "HttpRequest",
    "JournalPolicy",
    "Limits",
    "RequestContext",
    "UserInfo",
    "parse_journal_policy",
]

JOURNAL_POLICIES: Final = ("off", "errors", "all")
"""The fixed journal policies; ``sample:<rate>`` (0 < rate <= 1) is the fourth form."""

USAGE_FIELDS: Final = (
    "guest_cpu_ms",
    "memory_mb_ms",
    "egress_requests",
    "egress_bytes",
    "storage_ops",
    "storage_bytes",
    "debug_events",
)
"""What a runner measures per invocation and answers in ``usage`` (all non-negative numbers).

``guest_cpu_ms``: CPU time of the guest's worker thread; ``memory_mb_ms``: the memory cap in MiB times the guest's
wall time in ms; ``egress_*``: outbound HTTP requests and bytes sent plus received; ``storage_ops`` /
``storage_bytes``: storage calls and bytes read plus written; ``debug_events``: events the invocation emitted.
"""


@dataclass(frozen=True)
class JournalPolicy:
    """Which invocations a runner records into the invocation journal (``journal`` on ``/v1/execute``).

    ``mode`` is ``off``, ``errors`` (failures and 5xx answers), ``all``, or ``sample`` (``rate`` of them, chosen
    at random, plus every error). Spelled on the wire as ``"off" | "errors" | "all" | "sample:<rate>"``.
    """

    mode: str
    rate: float = 1.0

    def __str__(self) -> str:
        return f"sample:{self.rate:g}" if self.mode == "sample" else self.mode


def parse_journal_policy(text: str) -> JournalPolicy:
    """``"errors"`` -> ``JournalPolicy("errors")``, ``"sample:0.1"`` -> ``JournalPolicy("sample", 0.1)``.

    Raises:
        ValueError: not one of the four forms, or a rate outside ``(0, 1]``.
    """
    value = text.strip().lower()
    if value in JOURNAL_POLICIES:
        return JournalPolicy(value)
    kind, sep, raw_rate = value.partition(":")
    if kind == "sample" and sep:
        try:
            rate = float(raw_rate)
        except ValueError:
            rate = math.nan
        if 0 < rate <= 1:
            return JournalPolicy("sample", rate)
    raise ValueError("journal policy must be off, errors, all or sample:<rate> with 0 < rate <= 1")


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
    journal: JournalPolicy | None = None
    """Record this invocation into the journal per this policy (an extension of the reference's body; absent =
    never record)."""


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
    journal_entry: str | None = None
    """The id of the journal entry this invocation was recorded as (absent when it was not recorded)."""
    usage: Mapping[str, float] | None = None
    """What the invocation used (:data:`USAGE_FIELDS`); absent from runners that do not measure it."""

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
