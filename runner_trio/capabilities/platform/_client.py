"""Forwarding of ``scheduler``, ``invoicing``, ``clients`` and ``services`` to the platform's internal API.

Every call is ``POST {base}/api/internal/ext-{service}/install/{installId}`` with the header ``x-runner-auth``
and a JSON body ``{"operation": ..., ...}``, the shapes the platform's routes accept (the reference's wire):

=============================  ======================================================  =========================
WIT function                   request body                                            200 response
=============================  ======================================================  =========================
scheduler.list-schedules       ``{operation:"list"}``                                  ``{schedules:[info]}``
scheduler.get-schedule         ``{operation:"get", scheduleId}``                       ``{schedule: info|null}``
scheduler.create-schedule      ``{operation:"create", endpoint, cron, timezone?, …}``  create-schedule-result
scheduler.update-schedule      ``{operation:"update", scheduleId, …fields}``           update-schedule-result
scheduler.delete-schedule      ``{operation:"delete", scheduleId}``                    delete-schedule-result
scheduler.get-endpoints        ``{operation:"getEndpoints"}``                          ``{endpoints:[info]}``
invoicing.create-manual-inv…   ``{operation:"createManualInvoice", clientId, items…}``  result (``invoice``{…})
clients.list-clients           ``{operation:"list", input:{search?, page?, …}, user?}`` clients-list-result
clients.get-client             ``{operation:"get", input:{clientId}, user?}``          ``{item: summary|null}``
services.list-services / get   likewise with ``serviceId``                             likewise
=============================  ======================================================  =========================

Keys are the WIT field names in camelCase (``endpointPath``, ``lastRunAt``, ``totalCount``); absent optional
inputs are omitted, not sent as null; ``user`` is ``{userId, userType}`` when the invocation has a user. The
methods return plain dicts with exactly the WIT record's fields, camelCase, which the glue turns into records
(responses may use snake_case too; non-string ``payload``/``fieldErrors`` are JSON-encoded).

Errors: scheduler 401/403 -> ``denied``, 404 -> ``not-found``, 400/422 -> ``validation-failed``, 429 ->
``quota-exceeded``; clients/services 401/403/429 -> ``not-allowed``, 400/422 -> ``invalid-input``; anything else
(5xx, transport, timeout, a malformed answer) -> ``internal``. The WIT functions that return a result record
(create/update/delete-schedule, create-manual-invoice) never raise: a failure becomes ``success: false`` with
an ``error`` text, and a platform answer carrying ``success`` is passed through whatever its status.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final, final

from ...engine import HostScope
from .._errors import CapabilityError, HostCallError, InternalApiError
from .._httpio import DEFAULT_INTERNAL_TIMEOUT, DEFAULT_MAX_INTERNAL_RESPONSE_BYTES, InternalApi, path_segment

__all__ = ["PlatformClient", "camelize", "kebabize"]

_SCHEDULE_INFO: Final = {
    "id": "str", "endpointPath": "str", "endpointMethod": "str", "name": "str?", "cron": "str",
    "timezone": "str", "enabled": "bool", "payload": "json?", "lastRunAt": "str?", "lastRunStatus": "str?",
    "lastError": "str?", "createdAt": "str?",
}  # fmt: skip
_ENDPOINT_INFO: Final = {"id": "str", "method": "str", "path": "str", "handler": "str", "schedulable": "bool"}
_CLIENT_SUMMARY: Final = {
    "clientId": "str", "clientName": "str", "clientType": "str?", "isInactive": "bool",
    "defaultCurrencyCode": "str?", "accountManagerId": "str?", "accountManagerName": "str?", "billingEmail": "str?",
}  # fmt: skip
_SERVICE_SUMMARY: Final = {
    "serviceId": "str", "serviceName": "str", "itemKind": "enum:service|product",
    "billingMethod": "enum:fixed|hourly|usage", "serviceTypeId": "str?", "serviceTypeName": "str?",
    "defaultRate": "f64", "unitOfMeasure": "str", "isActive": "bool", "sku": "str?",
}  # fmt: skip
_PAGE: Final = {"totalCount": "u32", "page": "u32", "pageSize": "u32"}
_CREATE_RESULT: Final = {"success": "bool", "scheduleId": "str?", "error": "str?", "fieldErrors": "json?"}
_UPDATE_RESULT: Final = {"success": "bool", "error": "str?", "fieldErrors": "json?"}
_DELETE_RESULT: Final = {"success": "bool", "error": "str?"}
_INVOICE_RESULT: Final = {
    "success": "bool", "invoiceId": "str?", "invoiceNumber": "str?", "status": "str?", "subtotal": "f64?",
    "tax": "f64?", "total": "f64?", "error": "str?", "fieldErrors": "json?",
}  # fmt: skip

_SCHEDULER_ERRORS: Final = {401: "denied", 403: "denied", 404: "not-found", 400: "validation-failed",
                            422: "validation-failed", 429: "quota-exceeded"}  # fmt: skip
_READ_ERRORS: Final = {401: "not-allowed", 403: "not-allowed", 429: "not-allowed", 400: "invalid-input",
                       422: "invalid-input"}  # fmt: skip
_CAMEL: Final = re.compile(r"[-_]([a-z0-9])")


class _BadShape(CapabilityError):
    """A platform answer off the expected shape; always turned into ``internal`` or ``success: false`` here."""


@final
class PlatformClient:
    """Client of the platform's internal scheduler/invoicing/clients/services API (``RUNNER_PLATFORM_API_URL``).

    Args:
        base_url: the platform origin; paths ``/api/internal/ext-*/install/{id}`` are appended.
        auth_key: sent as ``x-runner-auth`` (``RUNNER_PLATFORM_AUTH_KEY``).
        timeout: per call, cut further by the invocation deadline.
        max_response_bytes: larger answers count as ``internal`` failures.
    """

    def __init__(
        self,
        base_url: str,
        auth_key: str | None,
        *,
        timeout: float = DEFAULT_INTERNAL_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_INTERNAL_RESPONSE_BYTES,
    ) -> None:
        self._api = InternalApi(base_url, auth_key, timeout=timeout, max_response_bytes=max_response_bytes)

    async def aclose(self) -> None:
        await self._api.aclose()

    # scheduler --------------------------------------------------------------------------------------------
    async def list_schedules(self, scope: HostScope) -> list[dict[str, Any]]:
        body = await self._call(scope, "scheduler", {"operation": "list"}, _SCHEDULER_ERRORS, "denied")
        return _records(body, "schedules", _SCHEDULE_INFO)

    async def get_schedule(self, scope: HostScope, schedule_id: str) -> dict[str, Any] | None:
        payload = {"operation": "get", "scheduleId": schedule_id}
        body = await self._call(scope, "scheduler", payload, _SCHEDULER_ERRORS, "denied")
        return _optional_record(body, "schedule", _SCHEDULE_INFO)

    async def get_endpoints(self, scope: HostScope) -> list[dict[str, Any]]:
        body = await self._call(scope, "scheduler", {"operation": "getEndpoints"}, _SCHEDULER_ERRORS, "denied")
        return _records(body, "endpoints", _ENDPOINT_INFO)

    async def create_schedule(self, scope: HostScope, input: Mapping[str, Any]) -> dict[str, Any]:
        payload = {"operation": "create", **camelize(input)}
        return await self._result(scope, "scheduler", payload, _CREATE_RESULT)

    async def update_schedule(self, scope: HostScope, schedule_id: str, input: Mapping[str, Any]) -> dict[str, Any]:
        payload = {"operation": "update", **camelize(input), "scheduleId": schedule_id}
        return await self._result(scope, "scheduler", payload, _UPDATE_RESULT)

    async def delete_schedule(self, scope: HostScope, schedule_id: str) -> dict[str, Any]:
        return await self._result(
            scope, "scheduler", {"operation": "delete", "scheduleId": schedule_id}, _DELETE_RESULT
        )

    # invoicing --------------------------------------------------------------------------------------------
    async def create_manual_invoice(self, scope: HostScope, input: Mapping[str, Any]) -> dict[str, Any]:
        payload = {"operation": "createManualInvoice", **camelize(input)}
        return await self._result(scope, "invoicing", payload, _INVOICE_RESULT, nested="invoice")

    # clients / services -----------------------------------------------------------------------------------
    async def list_clients(self, scope: HostScope, input: Mapping[str, Any]) -> dict[str, Any]:
        body = await self._read(scope, "clients", "list", camelize(input))
        return _page(body, _CLIENT_SUMMARY)

    async def get_client(self, scope: HostScope, client_id: str) -> dict[str, Any] | None:
        body = await self._read(scope, "clients", "get", {"clientId": client_id})
        return _optional_record(body, "item", _CLIENT_SUMMARY)

    async def list_services(self, scope: HostScope, input: Mapping[str, Any]) -> dict[str, Any]:
        body = await self._read(scope, "services", "list", camelize(input))
        return _page(body, _SERVICE_SUMMARY)

    async def get_service(self, scope: HostScope, service_id: str) -> dict[str, Any] | None:
        body = await self._read(scope, "services", "get", {"serviceId": service_id})
        return _optional_record(body, "item", _SERVICE_SUMMARY)

    # the glue's generic entry -----------------------------------------------------------------------------
    async def call(self, scope: HostScope, interface: str, operation: str, payload: Mapping[str, Any]) -> Any:
        """``interface.operation`` with WIT-named (kebab-case) arguments; the answer in kebab-case keys.

        Raises:
            HostCallError: as the typed methods.
            ValueError: an interface/operation this client does not forward (a host bug).
        """
        args: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in payload.items()}
        match interface, operation:
            case "scheduler", "list-schedules":
                answer: Any = await self.list_schedules(scope)
            case "scheduler", "get-schedule":
                answer = await self.get_schedule(scope, args["schedule-id"])
            case "scheduler", "create-schedule":
                answer = await self.create_schedule(scope, args["input"])
            case "scheduler", "update-schedule":
                answer = await self.update_schedule(scope, args["schedule-id"], args["input"])
            case "scheduler", "delete-schedule":
                answer = await self.delete_schedule(scope, args["schedule-id"])
            case "scheduler", "get-endpoints":
                answer = await self.get_endpoints(scope)
            case "invoicing", "create-manual-invoice":
                answer = await self.create_manual_invoice(scope, args["input"])
            case "clients", "list-clients":
                answer = await self.list_clients(scope, args["input"])
            case "clients", "get-client":
                answer = await self.get_client(scope, args["client-id"])
            case "services", "list-services":
                answer = await self.list_services(scope, args["input"])
            case "services", "get-service":
                answer = await self.get_service(scope, args["service-id"])
            case _:
                raise ValueError(f"no platform operation {interface}.{operation}")
        return kebabize(answer)

    # plumbing ---------------------------------------------------------------------------------------------
    async def _read(self, scope: HostScope, service: str, operation: str, input: dict[str, Any]) -> Any:
        payload: dict[str, Any] = {"operation": operation, "input": input}
        if scope.user is not None:
            payload["user"] = {"userId": scope.user.user_id, "userType": scope.user.user_type}
        return await self._call(scope, service, payload, _READ_ERRORS, "not-allowed")

    async def _call(
        self, scope: HostScope, service: str, payload: dict[str, Any], errors: Mapping[int, str], no_install: str
    ) -> Any:
        if not scope.install_id:
            raise HostCallError(no_install, "no install id")
        try:
            reply = await self._api.post(scope, _path(service, scope.install_id), payload)
        except InternalApiError as exc:
            raise HostCallError("internal", exc.reason) from None
        if not 200 <= reply.status < 300:
            raise HostCallError(errors.get(reply.status, "internal"), f"platform answered {reply.status}")
        return reply.body

    async def _result(
        self, scope: HostScope, service: str, payload: dict[str, Any], spec: Mapping[str, str], nested: str = ""
    ) -> dict[str, Any]:
        if not scope.install_id:
            return _failure(spec, "install id missing")
        try:
            reply = await self._api.post(scope, _path(service, scope.install_id), payload)
        except InternalApiError as exc:
            return _failure(spec, f"platform unavailable ({exc.reason})")
        body = reply.body
        if isinstance(body, dict) and isinstance(body.get("success"), bool):
            flat = {**body.get(nested, {}), **body} if nested and isinstance(body.get(nested), dict) else body
            try:
                return _record(flat, spec)
            except _BadShape as exc:
                return _failure(spec, f"malformed platform answer ({exc})")
        return _failure(spec, f"platform answered {reply.status}")


def _path(service: str, install_id: str) -> str:
    return f"/api/internal/ext-{service}/install/{path_segment(install_id)}"


def camelize(value: Mapping[str, Any]) -> dict[str, Any]:
    """Input mapping -> JSON object: snake_case/kebab-case keys to camelCase, ``None`` values omitted, recursively."""
    return {_CAMEL.sub(lambda m: m.group(1).upper(), key): _camel_value(item) for key, item in value.items()
            if item is not None}  # fmt: skip


def kebabize(value: Any) -> Any:
    """Answer -> WIT names: camelCase keys to kebab-case, recursively (values untouched)."""
    if isinstance(value, Mapping):
        return {
            re.sub(r"([A-Z])", lambda m: "-" + m.group(1).lower(), key): kebabize(item) for key, item in value.items()
        }
    if isinstance(value, list):
        return [kebabize(item) for item in value]
    return value


def _camel_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return camelize(value)
    if isinstance(value, list | tuple):
        return [_camel_value(item) for item in value]
    return value


def _failure(spec: Mapping[str, str], error: str) -> dict[str, Any]:
    return {name: (False if name == "success" else error if name == "error" else None) for name in spec}


def _records(body: Any, field: str, spec: Mapping[str, str]) -> list[dict[str, Any]]:
    items = body.get(field) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise HostCallError("internal", f"platform answer has no {field} list")
    try:
        return [_record(item, spec) for item in items]
    except _BadShape as exc:
        raise HostCallError("internal", f"malformed {field} entry ({exc})") from None


def _optional_record(body: Any, field: str, spec: Mapping[str, str]) -> dict[str, Any] | None:
    if not isinstance(body, dict):
        raise HostCallError("internal", "platform answer is not an object")
    item = body.get(field)
    if item is None:
        return None
    try:
        return _record(item, spec)
    except _BadShape as exc:
        raise HostCallError("internal", f"malformed {field} ({exc})") from None


def _page(body: Any, spec: Mapping[str, str]) -> dict[str, Any]:
    page = {"items": _records(body, "items", spec)}
    try:
        page.update(_record(body, _PAGE))
    except _BadShape as exc:
        raise HostCallError("internal", f"malformed page ({exc})") from None
    return page


def _record(obj: Any, spec: Mapping[str, str]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _BadShape("not an object")
    out: dict[str, Any] = {}
    for name, kind in spec.items():
        snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)
        value = obj.get(name, obj.get(snake))
        out[name] = _field(name, kind, value)
    return out


def _field(name: str, kind: str, value: Any) -> Any:
    optional = kind.endswith("?")
    if value is None:
        if optional:
            return None
        raise _BadShape(f"{name} is missing")
    base = kind.rstrip("?")
    if base == "str" and isinstance(value, str):
        return value
    if base == "json":  # a string field the platform may send as structured JSON
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if base == "bool" and isinstance(value, bool):
        return value
    if base == "f64" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if base == "u32" and isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32:
        return value
    if base.startswith("enum:") and value in base[5:].split("|"):
        return value
    raise _BadShape(f"{name} is not {base}")
