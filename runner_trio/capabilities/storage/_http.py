"""The platform storage backend: the internal API the reference runner forwards ``storage.*`` to.

``POST {base}/api/internal/ext-storage/install/{installId}`` with ``x-runner-auth`` and a JSON body:

=========  ===================================================================  ====================================
operation  request                                                              200 response
=========  ===================================================================  ====================================
get        ``{operation, namespace, key}``                                      ``{namespace, key, value, revision,
                                                                                metadata?}``
put        ``{operation, namespace, key, value, metadata:{encoding:             ``{namespace, key, revision}``
           "base64-bytes"}, ifRevision?}``
delete     ``{operation, namespace, key}``                                      ``{success: bool}`` (false: missing)
list       ``{operation, namespace, cursor?, limit, includeValues: true,        ``{items: [{key, value, revision,
           includeMetadata: true}``                                             metadata?}], nextCursor}``
=========  ===================================================================  ====================================

Values travel as base64 with ``metadata.encoding = "base64-bytes"``; a value the platform holds in another
encoding (plain JSON written by other parts of the platform) reaches the guest as its UTF-8 text when it is a
string, else as compact JSON. Status mapping: 404 -> ``missing``, 409 -> ``conflict``, 400/401/403/413/429 ->
``denied`` (the platform enforces the same limits and quotas), anything else, a transport failure or a
malformed answer -> ``internal``.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Final, TypeGuard, final

from ...engine import HostScope
from .._errors import HostCallError, InternalApiError
from .._httpio import DEFAULT_INTERNAL_TIMEOUT, DEFAULT_MAX_INTERNAL_RESPONSE_BYTES, InternalApi, path_segment
from ._backend import Entry, StorageLimits, storage_owner

__all__ = ["HttpStorage"]

_BASE64_BYTES: Final = "base64-bytes"
_STATUS_ERRORS: Final = {404: "missing", 409: "conflict", 400: "denied", 401: "denied", 403: "denied",
                         413: "denied", 429: "denied"}  # fmt: skip


@final
class HttpStorage:
    """Key-value storage held by the platform, per install.

    Args:
        base_url: the platform origin (``RUNNER_STORAGE_URL``).
        auth_key: ``x-runner-auth`` (``RUNNER_STORAGE_AUTH_KEY``).
        limits: checked before anything is sent (the platform enforces its quotas itself).
        timeout: per call, cut further by the invocation deadline.
        max_response_bytes: larger answers fail as ``internal``.
    """

    def __init__(
        self,
        base_url: str,
        auth_key: str | None,
        *,
        limits: StorageLimits | None = None,
        timeout: float = DEFAULT_INTERNAL_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_INTERNAL_RESPONSE_BYTES,
    ) -> None:
        self._api = InternalApi(base_url, auth_key, timeout=timeout, max_response_bytes=max_response_bytes)
        self._limits = limits if limits is not None else StorageLimits()

    @property
    def limits(self) -> StorageLimits:
        return self._limits

    async def get(self, scope: HostScope, namespace: str, key: str) -> Entry:
        self._limits.check_namespace(namespace)
        self._limits.check_key(key)
        body = await self._call(scope, {"operation": "get", "namespace": namespace, "key": key})
        return _entry(body, namespace, key)

    async def put(
        self, scope: HostScope, namespace: str, key: str, value: bytes, if_revision: int | None = None
    ) -> Entry:
        self._limits.check_namespace(namespace)
        self._limits.check_key(key)
        self._limits.check_value(value)
        self._limits.check_revision(if_revision)
        data = bytes(value)
        payload: dict[str, Any] = {
            "operation": "put",
            "namespace": namespace,
            "key": key,
            "value": base64.b64encode(data).decode("ascii"),
            "metadata": {"encoding": _BASE64_BYTES},
        }
        if if_revision is not None:
            payload["ifRevision"] = if_revision
        body = await self._call(scope, payload)
        revision = body.get("revision") if isinstance(body, dict) else None
        if not _is_revision(revision):
            raise HostCallError("internal", "platform answer has no revision")
        return Entry(namespace, key, data, revision)

    async def delete(self, scope: HostScope, namespace: str, key: str) -> None:
        self._limits.check_namespace(namespace)
        self._limits.check_key(key)
        body = await self._call(scope, {"operation": "delete", "namespace": namespace, "key": key})
        if isinstance(body, dict) and body.get("success") is False:
            raise HostCallError("missing", "no such key")

    async def list_entries(
        self, scope: HostScope, namespace: str, cursor: str | None = None, limit: int | None = None
    ) -> tuple[list[Entry], str | None]:
        self._limits.check_namespace(namespace)
        self._limits.check_cursor(cursor)
        payload: dict[str, Any] = {
            "operation": "list",
            "namespace": namespace,
            "limit": self._limits.page(limit),
            "includeValues": True,
            "includeMetadata": True,
        }
        if cursor:
            payload["cursor"] = cursor
        body = await self._call(scope, payload)
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise HostCallError("internal", "platform answer has no items list")
        entries = [_entry(item, namespace, None) for item in items]
        next_cursor = body.get("nextCursor")
        return entries, next_cursor if isinstance(next_cursor, str) and next_cursor else None

    async def aclose(self) -> None:
        await self._api.aclose()

    async def _call(self, scope: HostScope, payload: dict[str, Any]) -> Any:
        owner = storage_owner(scope, allow_extension_fallback=False)
        install_id = owner.removeprefix("install/")
        try:
            reply = await self._api.post(
                scope, f"/api/internal/ext-storage/install/{path_segment(install_id)}", payload
            )
        except InternalApiError as exc:
            raise HostCallError("internal", f"storage API: {exc.reason}") from None
        if not 200 <= reply.status < 300:
            raise HostCallError(_STATUS_ERRORS.get(reply.status, "internal"), f"storage API answered {reply.status}")
        return reply.body


def _is_revision(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**64


def _entry(item: Any, namespace: str, key: str | None) -> Entry:
    if not isinstance(item, dict):
        raise HostCallError("internal", "storage entry is not an object")
    found_key = item.get("key", key)
    revision = item.get("revision")
    if not isinstance(found_key, str) or (key is not None and found_key != key) or not _is_revision(revision):
        raise HostCallError("internal", "malformed storage entry")
    return Entry(namespace, found_key, _decode_value(item.get("value"), item.get("metadata")), revision)


def _decode_value(value: Any, metadata: Any) -> bytes:
    encoding = metadata.get("encoding") if isinstance(metadata, dict) else None
    if encoding == _BASE64_BYTES:
        if not isinstance(value, str):
            raise HostCallError("internal", "base64 storage value is not a string")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise HostCallError("internal", "storage value is not valid base64") from None
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value, separators=(",", ":")).encode("utf-8")
