"""The JSON codec of ``/v1/execute``: strict decoding with field paths, encoding to the one canonical form.

Decoding follows the reference runner: unknown fields are ignored, fields we read are type-checked and every
failure names its dotted path (:class:`InvalidField`). Encoding writes what the gateway has always sent, key
for key and in this order, so a runner built for the reference reads it unchanged::

    {"context": {"request_id", "tenant_id", "extension_id", "install_id", "content_hash": "sha256:<hex>",
                 "version_id", "config"},            # unset ids left out
     "http": {"method", "path", "query", "headers", "body_b64"},   # body_b64 null: no body; "": empty body
     "limits": {"timeout_ms", "memory_mb", "fuel"},  # unset ones left out
     "providers": [sorted], "secret_envelope": {…} | null,
     "user": {"user_id", "user_email", "user_name", "user_type", "client_name", "additional_fields",
              "client_id"} | null}                   # client_id left out when unset

and the result as ``{"status", "headers", "body_b64", "error"}``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

from bundles import KNOWN_CAPABILITIES

from ._errors import BodyTooLarge, InvalidBase64, InvalidField, UnknownCapabilities
from ._execute import (
    ExecuteRequest,
    ExecuteResult,
    HttpRequest,
    JournalPolicy,
    Limits,
    RequestContext,
    UserInfo,
    parse_journal_policy,
)
from ._grammar import ContentHashError, format_content_hash, is_id, is_safe_id, parse_content_hash

__all__ = [
    "MAX_GUEST_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "decode_execute_json",
    "decode_execute_request",
    "decode_execute_result",
    "encode_execute_request",
    "encode_execute_result",
    "execute_document_bytes",
    "load_json",
]

_METHOD: Final = re.compile(r"[A-Z]{1,16}")

MAX_GUEST_BODY_BYTES: Final = 2 * 1024 * 1024
"""The largest request body a runner passes to a guest (its default cap), and so the gateway's default cap."""
MAX_JSON_DEPTH: Final = 1024
"""Nesting orjson accepts; a deeper document is refused by orjson itself (``depth limit exceeded``)."""
ENVELOPE_OVERHEAD_BYTES: Final = 256 * 1024
"""What an execute document may hold beside its base64 body (context, headers, user, secret envelope)."""


def execute_document_bytes(max_body_bytes: int) -> int:
    """The largest ``/v1/execute`` document for a body cap: the body in base64 plus the envelope."""
    return max_body_bytes * 4 // 3 + 4 + ENVELOPE_OVERHEAD_BYTES


def load_json(raw: bytes | bytearray | memoryview | str, *, max_bytes: int) -> Any:
    """Parse one JSON document with explicit limits: at most ``max_bytes``, at most :data:`MAX_JSON_DEPTH`
    levels deep (orjson's own limit), UTF-8 only.

    Raises:
        BodyTooLarge: the document is longer than ``max_bytes``.
        InvalidField: (``$``) not JSON, not UTF-8, or nested too deep.
    """
    if len(raw) > max_bytes:
        raise BodyTooLarge(f"request document exceeds {max_bytes} bytes")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise InvalidField("$", f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
        raise InvalidField("$", f"body is not JSON: {exc}") from None


def decode_execute_json(
    raw: bytes | bytearray | memoryview | str, *, max_body_bytes: int, max_document_bytes: int | None = None
) -> ExecuteRequest:
    """:func:`load_json` then :func:`decode_execute_request`: raw ``/v1/execute`` bytes to a typed request.

    Raises:
        ContractError: ``InvalidField`` (``$`` for the document itself), ``UnknownCapabilities`` or
            ``BodyTooLarge`` (the document, or the decoded body); never another exception.
    """
    limit = max_document_bytes if max_document_bytes is not None else execute_document_bytes(max_body_bytes)
    return decode_execute_request(load_json(raw, max_bytes=limit), max_body_bytes=max_body_bytes)


# -- decoding helpers: each names the dotted path of what it refuses -------------------------------------------


def _obj(value: Any, path: str, *, required: bool = True) -> Mapping[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidField(path, "must be an object")
    return value


def _str(obj: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidField(f"{path}.{key}", "is required")
        return None
    if not isinstance(value, str):
        raise InvalidField(f"{path}.{key}", "must be a string")
    return value


def _id(obj: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
    value = _str(obj, key, path, required=required)
    if value is not None and not is_id(value):
        raise InvalidField(f"{path}.{key}", "must be 1-128 characters of [A-Za-z0-9._:@-]")
    return value


def _str_map(value: Any, path: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidField(path, "must be an object of strings")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(v, str):
            raise InvalidField(f"{path}.{k}", "must be a string")
        out[str(k)] = v
    return out


def _opt_int(obj: Mapping[str, Any], key: str, path: str, *, minimum: int = 1) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(f"{path}.{key}", "must be an integer")
    if value < minimum:
        raise InvalidField(f"{path}.{key}", f"must be >= {minimum}")
    return value


def _b64(value: str, path: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBase64(path, "must be base64") from None


def _b64_text(body: bytes | None) -> str | None:
    return None if body is None else base64.b64encode(body).decode("ascii")


# -- the request -----------------------------------------------------------------------------------------------


def decode_execute_request(doc: Any, *, max_body_bytes: int) -> ExecuteRequest:
    """Validate a decoded ``/v1/execute`` body into its normal form.

    Raises:
        InvalidField: a field is missing or has the wrong type (``.field`` names it).
        UnknownCapabilities: ``providers`` names capabilities that do not exist.
        BodyTooLarge: the decoded request body exceeds ``max_body_bytes``.
    """
    root = _obj(doc, "$")
    ctx = _obj(root.get("context"), "context")
    raw_hash = _str(ctx, "content_hash", "context", required=True) or ""
    try:
        hex_digest = parse_content_hash(raw_hash)
    except ContentHashError:
        raise InvalidField("context.content_hash", "must be sha256:<64 hex> or 64 hex") from None
    context = RequestContext(
        tenant_id=_id(ctx, "tenant_id", "context", required=True) or "",
        extension_id=_id(ctx, "extension_id", "context", required=True) or "",
        content_hash=hex_digest,
        request_id=_str(ctx, "request_id", "context"),
        install_id=_id(ctx, "install_id", "context"),
        version_id=_str(ctx, "version_id", "context"),
        config=_str_map(ctx.get("config"), "context.config"),
    )

    http = _obj(root.get("http"), "http")
    method = (_str(http, "method", "http", required=True) or "").upper()
    if not _METHOD.fullmatch(method):
        raise InvalidField("http.method", "must be an HTTP method token")
    path = _str(http, "path", "http") or "/"
    if not path.startswith("/"):
        path = "/" + path
    body_b64 = _str(http, "body_b64", "http")
    body: bytes | None = None
    if body_b64 is not None:
        # Refused before decoding: a huge body costs no memory beyond its JSON text.
        if len(body_b64) > (max_body_bytes + 2) // 3 * 4 + 4:
            raise BodyTooLarge(f"request body exceeds {max_body_bytes} bytes")
        body = _b64(body_b64, "http.body_b64")
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
        raise InvalidField("providers", "must be a list of strings")
    providers = frozenset(p.strip().lower() for p in raw_providers)
    unknown = tuple(sorted(providers - KNOWN_CAPABILITIES))
    if unknown:
        raise UnknownCapabilities(unknown)

    envelope = root.get("secret_envelope")
    if envelope is not None and not isinstance(envelope, Mapping):
        raise InvalidField("secret_envelope", "must be an object")

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
    journal: JournalPolicy | None = None
    raw_journal = root.get("journal")
    if raw_journal is not None:
        if not isinstance(raw_journal, str):
            raise InvalidField("journal", "must be a string")
        try:
            journal = parse_journal_policy(raw_journal)
        except ValueError as exc:
            raise InvalidField("journal", str(exc)) from None
    return ExecuteRequest(
        context=context,
        http=request,
        limits=limits,
        providers=providers,
        secret_envelope=envelope,
        user=user,
        journal=journal,
    )


def encode_execute_request(request: ExecuteRequest) -> dict[str, Any]:
    """The JSON body of ``POST /v1/execute`` for ``request`` (see the module docstring for its exact form)."""
    ctx = request.context
    context: dict[str, Any] = {}
    if ctx.request_id is not None:
        context["request_id"] = ctx.request_id
    context["tenant_id"] = ctx.tenant_id
    context["extension_id"] = ctx.extension_id
    if ctx.install_id is not None:
        context["install_id"] = ctx.install_id
    context["content_hash"] = format_content_hash(ctx.content_hash)
    if ctx.version_id is not None:
        context["version_id"] = ctx.version_id
    context["config"] = dict(ctx.config)
    http = request.http
    limits = request.limits
    doc: dict[str, Any] = {
        "context": context,
        "http": {
            "method": http.method,
            "path": http.path,
            "query": dict(http.query),
            "headers": dict(http.headers),
            "body_b64": _b64_text(http.body),
        },
        "limits": {
            name: value
            for name, value in (("timeout_ms", limits.timeout_ms), ("memory_mb", limits.memory_mb),
                                ("fuel", limits.fuel))
            if value is not None
        },
        "providers": sorted(request.providers),
        "secret_envelope": dict(request.secret_envelope) if request.secret_envelope is not None else None,
        "user": _encode_user(request.user) if request.user is not None else None,
    }
    if request.journal is not None:
        doc["journal"] = str(request.journal)
    return doc


def _encode_user(user: UserInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "user_id": user.user_id,
        "user_email": user.user_email,
        "user_name": user.user_name,
        "user_type": user.user_type,
        "client_name": user.client_name,
        "additional_fields": dict(user.additional_fields),
    }
    if user.client_id is not None:
        out["client_id"] = user.client_id
    return out


# -- the result ------------------------------------------------------------------------------------------------


def encode_execute_result(result: ExecuteResult) -> dict[str, Any]:
    """``{"status", "headers", "body_b64", "error"}``: what ``/v1/execute`` answers, plus ``journal_entry`` and
    ``usage`` when present (extensions of the reference's answer, which its callers ignore)."""
    doc: dict[str, Any] = {
        "status": result.status,
        "headers": dict(result.headers),
        "body_b64": _b64_text(result.body),
        "error": result.error,
    }
    if result.journal_entry is not None:
        doc["journal_entry"] = result.journal_entry
    if result.usage is not None:
        doc["usage"] = dict(result.usage)
    return doc


def decode_execute_result(doc: Any) -> ExecuteResult:
    """Validate a runner's decoded answer.

    Every field's type is checked before ``body_b64`` is decoded, so a malformed answer is reported as such
    even when its body is not base64 either. A missing or falsy ``headers`` reads as no headers.

    Raises:
        InvalidField: the answer is not an object, or a field has the wrong type (``status`` must be an integer
            within 100-599, ``headers`` an object of strings, ``body_b64`` and ``error`` strings or null).
        InvalidBase64: every type is right but ``body_b64`` is not base64.
    """
    if not isinstance(doc, dict):
        raise InvalidField("$", "must be an object")
    status = doc.get("status")
    headers = doc.get("headers") or {}
    body_b64 = doc.get("body_b64")
    error = doc.get("error")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise InvalidField("status", "must be an integer within 100-599")
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise InvalidField("headers", "must be an object of strings")
    if not (body_b64 is None or isinstance(body_b64, str)):
        raise InvalidField("body_b64", "must be a string or null")
    if not (error is None or isinstance(error, str)):
        raise InvalidField("error", "must be a string or null")
    journal_entry = doc.get("journal_entry")
    if not (journal_entry is None or (isinstance(journal_entry, str) and is_safe_id(journal_entry))):
        raise InvalidField("journal_entry", "must be an id or null")
    usage = doc.get("usage")
    if usage is not None and not (
        isinstance(usage, dict)
        and all(isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
                for k, v in usage.items())
    ):
        raise InvalidField("usage", "must be an object of non-negative numbers")
    body = None if body_b64 is None else _b64(body_b64, "body_b64")
    return ExecuteResult(status, headers, body, error, journal_entry=journal_entry,
                         usage=None if usage is None else {k: usage[k] for k in usage})
