"""The ``/v1/execute`` JSON contract: parsing a request strictly, and shaping the response.

Field names and error codes follow the reference runner, so a gateway built for it talks to us unchanged.
Unknown fields are ignored (the contract says so); fields we read are type-checked and every failure names
its dotted path.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from bundles import KNOWN_CAPABILITIES

from ._errors import RequestInvalid, UnknownCapabilities

__all__ = ["ExecuteRequest", "ExecuteResult", "Limits", "RequestContext", "UserInfo", "parse_execute_request"]

_HEX64: Final = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})$")
_METHOD: Final = re.compile(r"^[A-Z]{1,16}$")
# An id travels into stream keys, logs and file names: keep it to a conservative alphabet.
_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")


@dataclass(frozen=True)
class RequestContext:
    tenant_id: str
    extension_id: str
    content_hash: str  # bare lower-case hex
    request_id: str | None = None
    install_id: str | None = None
    version_id: str | None = None
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes | None

    @property
    def url(self) -> str:
        """``path`` + ``?`` + urlencoded ``query``: what the guest sees as ``http-request.url``."""
        from urllib.parse import urlencode

        return f"{self.path}?{urlencode(dict(self.query))}" if self.query else self.path


@dataclass(frozen=True)
class Limits:
    timeout_ms: int | None = None
    memory_mb: int | None = None
    fuel: int | None = None


@dataclass(frozen=True)
class UserInfo:
    user_id: str
    user_email: str
    user_name: str
    user_type: str
    client_name: str
    client_id: str | None = None
    additional_fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecuteRequest:
    context: RequestContext
    http: HttpRequest
    limits: Limits
    providers: frozenset[str]
    secret_envelope: Mapping[str, Any] | None
    user: UserInfo | None


@dataclass(frozen=True)
class ExecuteResult:
    """What ``/v1/execute`` answers (always with HTTP 200)."""

    status: int
    headers: Mapping[str, str]
    body: bytes | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "headers": dict(self.headers),
            "body_b64": base64.b64encode(self.body).decode("ascii") if self.body is not None else None,
            "error": self.error,
        }


def _obj(value: Any, path: str, *, required: bool = True) -> Mapping[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise RequestInvalid(path, "must be an object")
    return value


def _str(obj: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise RequestInvalid(f"{path}.{key}", "is required")
        return None
    if not isinstance(value, str):
        raise RequestInvalid(f"{path}.{key}", "must be a string")
    return value


def _id(obj: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
    value = _str(obj, key, path, required=required)
    if value is not None and not _ID.match(value):
        raise RequestInvalid(f"{path}.{key}", "must be 1-128 characters of [A-Za-z0-9._:@-]")
    return value


def _str_map(value: Any, path: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RequestInvalid(path, "must be an object of strings")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(v, str):
            raise RequestInvalid(f"{path}.{k}", "must be a string")
        out[str(k)] = v
    return out


def _opt_int(obj: Mapping[str, Any], key: str, path: str, *, minimum: int = 1) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestInvalid(f"{path}.{key}", "must be an integer")
    if value < minimum:
        raise RequestInvalid(f"{path}.{key}", f"must be >= {minimum}")
    return value


def parse_execute_request(doc: Any, *, max_body_bytes: int) -> ExecuteRequest:
    """Validate a decoded ``/v1/execute`` body.

    Raises:
        RequestInvalid: a field is missing or has the wrong type (``.field`` names it).
        UnknownCapabilities: ``providers`` names capabilities that do not exist.
        BodyTooLarge: the decoded request body exceeds ``max_body_bytes``.
    """
    from ._errors import BodyTooLarge

    root = _obj(doc, "$")
    ctx = _obj(root.get("context"), "context")
    raw_hash = _str(ctx, "content_hash", "context", required=True)
    match = _HEX64.match(raw_hash or "")
    if match is None:
        raise RequestInvalid("context.content_hash", "must be sha256:<64 hex> or 64 hex")
    context = RequestContext(
        tenant_id=_id(ctx, "tenant_id", "context", required=True) or "",
        extension_id=_id(ctx, "extension_id", "context", required=True) or "",
        content_hash=match.group(1).lower(),
        request_id=_str(ctx, "request_id", "context"),
        install_id=_id(ctx, "install_id", "context"),
        version_id=_str(ctx, "version_id", "context"),
        config=_str_map(ctx.get("config"), "context.config"),
    )

    http = _obj(root.get("http"), "http")
    method = (_str(http, "method", "http", required=True) or "").upper()
    if not _METHOD.match(method):
        raise RequestInvalid("http.method", "must be an HTTP method token")
    path = _str(http, "path", "http") or "/"
    if not path.startswith("/"):
        path = "/" + path
    body_b64 = _str(http, "body_b64", "http")
    body: bytes | None = None
    if body_b64 is not None:
        if len(body_b64) > (max_body_bytes + 2) // 3 * 4 + 4:
            raise BodyTooLarge(f"request body exceeds {max_body_bytes} bytes")
        try:
            body = base64.b64decode(body_b64, validate=True)
        except (binascii.Error, ValueError):
            raise RequestInvalid("http.body_b64", "must be base64") from None
        if len(body) > max_body_bytes:
            raise BodyTooLarge(f"request body exceeds {max_body_bytes} bytes")
    request = HttpRequest(
        method=method,
        path=path,
        query=_str_map(http.get("query"), "http.query"),
        headers={k.lower(): v for k, v in _str_map(http.get("headers"), "http.headers").items()},
        body=body,
    )

    lim = _obj(root.get("limits"), "limits", required=False)
    limits = Limits(
        timeout_ms=_opt_int(lim, "timeout_ms", "limits"),
        memory_mb=_opt_int(lim, "memory_mb", "limits"),
        fuel=_opt_int(lim, "fuel", "limits"),
    )

    raw_providers = root.get("providers")
    if raw_providers is None:
        raw_providers = []
    if not isinstance(raw_providers, list) or not all(isinstance(p, str) for p in raw_providers):
        raise RequestInvalid("providers", "must be a list of strings")
    providers = frozenset(p.strip().lower() for p in raw_providers)
    unknown = sorted(providers - KNOWN_CAPABILITIES)
    if unknown:
        raise UnknownCapabilities(", ".join(unknown))

    envelope = root.get("secret_envelope")
    if envelope is not None and not isinstance(envelope, Mapping):
        raise RequestInvalid("secret_envelope", "must be an object")

    user: UserInfo | None = None
    raw_user = root.get("user")
    if raw_user is not None:
        u = _obj(raw_user, "user")
        client_name = _str(u, "client_name", "user") or _str(u, "company_name", "user") or ""
        user = UserInfo(
            user_id=_str(u, "user_id", "user", required=True) or "",
            user_email=_str(u, "user_email", "user") or "",
            user_name=_str(u, "user_name", "user") or "",
            user_type=_str(u, "user_type", "user") or "",
            client_name=client_name,
            client_id=_str(u, "client_id", "user"),
            additional_fields=_str_map(u.get("additional_fields"), "user.additional_fields"),
        )
    return ExecuteRequest(
        context=context,
        http=request,
        limits=limits,
        providers=providers,
        secret_envelope=envelope,
        user=user,
    )
