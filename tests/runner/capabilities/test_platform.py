from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from runner_trio.capabilities import HostCallError
from runner_trio.capabilities.platform import PlatformClient
from runner_trio.engine import HostScope, HostUser

from ._servers import Req, Resp, Server

Serve = Callable[..., Awaitable[Server]]
AUTH = "platform-key"
_PATH = re.compile(r"^/api/internal/ext-(scheduler|invoicing|clients|services)/install/([^/]+)$")

SCHEDULE = {
    "id": "s-1", "endpointPath": "/jobs/run", "endpoint_method": "POST", "name": None, "cron": "0 * * * *",
    "timezone": "UTC", "enabled": True, "payload": {"x": 1}, "lastRunAt": "2030-01-01T00:00:00Z",
    "createdAt": "2029-12-01T00:00:00Z",
}  # fmt: skip
CLIENT = {"clientId": "c-1", "clientName": "Acme", "isInactive": False, "billingEmail": "ap@acme.test"}
SERVICE = {
    "serviceId": "sv-1", "serviceName": "Support", "itemKind": "service", "billingMethod": "hourly",
    "defaultRate": 150, "unitOfMeasure": "hour", "isActive": True,
}  # fmt: skip


async def platform(request: Req) -> Resp:
    if request.header("x-runner-auth") != AUTH:
        return Resp.json(401, {"error": "Invalid runner token", "code": "UNAUTHORIZED"})
    match = _PATH.match(request.path)
    assert match is not None
    assert request.method == "POST"
    service, install = match.groups()
    if install.startswith("status-"):
        return Resp.json(int(install.removeprefix("status-")), {"error": "canned", "code": "CANNED"})
    if install == "garbage":
        return Resp(200, [], b"<html>")
    body = request.json()
    operation = body["operation"]
    if service == "scheduler":
        answers: dict[str, Any] = {
            "list": {"schedules": [SCHEDULE]},
            "get": {"schedule": SCHEDULE if body.get("scheduleId") == "s-1" else None},
            "getEndpoints": {
                "endpoints": [
                    {"id": "e-1", "method": "POST", "path": "/jobs/run", "handler": "dist/main", "schedulable": True}
                ]
            },
            "update": {"success": True},
            "delete": {"success": True, "error": None},
        }
        if operation == "create":
            if body["cron"] == "bad":
                return Resp.json(400, {"success": False, "error": "invalid cron", "fieldErrors": {"cron": "bad"}})
            return Resp.json(201, {"success": True, "scheduleId": "s-2"})
        return Resp.json(200, answers[operation])
    if service == "invoicing":
        return Resp.json(
            200,
            {
                "success": True,
                "invoice": {
                    "invoiceId": "i-1",
                    "invoiceNumber": "INV-1",
                    "status": "draft",
                    "subtotal": 100,
                    "tax": 10.5,
                    "total": 110.5,
                },
            },
        )
    item = CLIENT if service == "clients" else SERVICE
    if operation == "list":
        return Resp.json(200, {"items": [item], "totalCount": 1, "page": 1, "pageSize": 25})
    wanted = body["input"].get("clientId", body["input"].get("serviceId"))
    return Resp.json(200, {"item": item if wanted in ("c-1", "sv-1") else None})


def scope(install_id: str | None = "inst-1", user: bool = True) -> HostScope:
    return HostScope(
        "tenant-1",
        "ext-1",
        install_id=install_id,
        request_id="req-1",
        deadline=trio.current_time() + 30,
        user=HostUser("user-7", "internal") if user else None,
    )


@pytest.fixture
async def platform_client(serve: Serve) -> tuple[PlatformClient, Server]:
    server = await serve(platform)
    return PlatformClient(server.url, AUTH), server


async def test_scheduler(platform_client: tuple[PlatformClient, Server]) -> None:
    client, server = platform_client
    schedules = await client.list_schedules(scope())
    assert schedules == [
        {
            "id": "s-1", "endpointPath": "/jobs/run", "endpointMethod": "POST", "name": None, "cron": "0 * * * *",
            "timezone": "UTC", "enabled": True, "payload": '{"x":1}', "lastRunAt": "2030-01-01T00:00:00Z",
            "lastRunStatus": None, "lastError": None, "createdAt": "2029-12-01T00:00:00Z",
        }
    ]  # fmt: skip
    assert server.seen[-1].json() == {"operation": "list"}
    assert server.seen[-1].path == "/api/internal/ext-scheduler/install/inst-1"
    assert (await client.get_schedule(scope(), "s-1")) == schedules[0]
    assert await client.get_schedule(scope(), "s-404") is None
    assert server.seen[-1].json() == {"operation": "get", "scheduleId": "s-404"}
    endpoints = await client.get_endpoints(scope())
    assert endpoints == [
        {"id": "e-1", "method": "POST", "path": "/jobs/run", "handler": "dist/main", "schedulable": True}
    ]

    created = await client.create_schedule(
        scope(), {"endpoint": "/jobs/run", "cron": "* * * * *", "timezone": None, "enabled": True, "payload": '{"a":1}'}
    )
    assert created == {"success": True, "scheduleId": "s-2", "error": None, "fieldErrors": None}
    assert server.seen[-1].json() == {
        "operation": "create",
        "endpoint": "/jobs/run",
        "cron": "* * * * *",
        "enabled": True,
        "payload": '{"a":1}',
    }
    refused = await client.create_schedule(scope(), {"endpoint": "/jobs/run", "cron": "bad"})
    assert refused == {"success": False, "scheduleId": None, "error": "invalid cron", "fieldErrors": '{"cron":"bad"}'}
    assert await client.update_schedule(scope(), "s-1", {"enabled": False}) == {
        "success": True,
        "error": None,
        "fieldErrors": None,
    }
    assert server.seen[-1].json() == {"operation": "update", "enabled": False, "scheduleId": "s-1"}
    assert await client.delete_schedule(scope(), "s-1") == {"success": True, "error": None}
    await client.aclose()


async def test_invoicing_flattens_the_invoice(platform_client: tuple[PlatformClient, Server]) -> None:
    client, server = platform_client
    result = await client.create_manual_invoice(
        scope(),
        {
            "client_id": "c-1",
            "items": [
                {
                    "service_id": "sv-1",
                    "quantity": 2.0,
                    "description": "x",
                    "rate": 50.0,
                    "is_discount": None,
                    "discount_type": "percentage",
                }
            ],
            "po_number": None,
        },
    )
    assert result == {
        "success": True, "invoiceId": "i-1", "invoiceNumber": "INV-1", "status": "draft", "subtotal": 100.0,
        "tax": 10.5, "total": 110.5, "error": None, "fieldErrors": None,
    }  # fmt: skip
    item = {"serviceId": "sv-1", "quantity": 2.0, "description": "x", "rate": 50.0, "discountType": "percentage"}
    assert server.seen[-1].json() == {"operation": "createManualInvoice", "clientId": "c-1", "items": [item]}
    await client.aclose()


async def test_clients_and_services(platform_client: tuple[PlatformClient, Server]) -> None:
    client, server = platform_client
    page = await client.list_clients(scope(), {"search": "ac", "include_inactive": True, "page": None})
    assert page["items"][0]["clientName"] == "Acme"
    assert page["items"][0]["clientType"] is None
    assert (page["totalCount"], page["page"], page["pageSize"]) == (1, 1, 25)
    assert server.seen[-1].json() == {
        "operation": "list", "input": {"search": "ac", "includeInactive": True},
        "user": {"userId": "user-7", "userType": "internal"},
    }  # fmt: skip
    assert (await client.get_client(scope(user=False), "c-1"))["billingEmail"] == "ap@acme.test"  # type: ignore[index]
    assert "user" not in server.seen[-1].json()
    assert await client.get_client(scope(), "c-404") is None
    services = await client.list_services(scope(), {"item_kind": "service"})
    assert services["items"][0]["defaultRate"] == 150.0
    assert services["items"][0]["billingMethod"] == "hourly"
    assert await client.get_service(scope(), "sv-404") is None
    await client.aclose()


@pytest.mark.parametrize(
    ("status", "scheduler_variant", "read_variant"),
    [
        (401, "denied", "not-allowed"),
        (403, "denied", "not-allowed"),
        (429, "quota-exceeded", "not-allowed"),
        (404, "not-found", "internal"),
        (400, "validation-failed", "invalid-input"),
        (422, "validation-failed", "invalid-input"),
        (500, "internal", "internal"),
        (302, "internal", "internal"),
    ],
)
async def test_error_mapping(
    platform_client: tuple[PlatformClient, Server], status: int, scheduler_variant: str, read_variant: str
) -> None:
    client, _ = platform_client
    target = scope(f"status-{status}")
    with pytest.raises(HostCallError) as info:
        await client.list_schedules(target)
    assert info.value.variant == scheduler_variant
    with pytest.raises(HostCallError) as info:
        await client.list_clients(target, {})
    assert info.value.variant == read_variant
    with pytest.raises(HostCallError) as info:
        await client.get_service(target, "sv-1")
    assert info.value.variant == read_variant
    result = await client.create_schedule(target, {"endpoint": "/x", "cron": "* * * * *"})
    assert result["success"] is False
    assert result["error"] == f"platform answered {status}"
    await client.aclose()


async def test_malformed_answers_wrong_key_and_no_install(platform_client: tuple[PlatformClient, Server]) -> None:
    client, server = platform_client
    with pytest.raises(HostCallError) as info:
        await client.list_schedules(scope("garbage"))
    assert info.value.variant == "internal"
    assert (await client.create_manual_invoice(scope("garbage"), {"client_id": "c"}))["success"] is False

    wrong = PlatformClient(server.url, "wrong-key")
    with pytest.raises(HostCallError) as info:
        await wrong.list_schedules(scope())
    assert info.value.variant == "denied"
    await wrong.aclose()

    seen = len(server.seen)
    with pytest.raises(HostCallError) as info:
        await client.get_endpoints(scope(None))
    assert info.value.variant == "denied"
    with pytest.raises(HostCallError) as info:
        await client.list_services(scope(None), {})
    assert info.value.variant == "not-allowed"
    assert (await client.delete_schedule(scope(None), "s-1")) == {"success": False, "error": "install id missing"}
    assert len(server.seen) == seen
    await client.aclose()

    unreachable = PlatformClient("http://127.0.0.1:1", AUTH)
    with pytest.raises(HostCallError) as info:
        await unreachable.get_client(scope(), "c-1")
    assert info.value.variant == "internal"
    assert (await unreachable.update_schedule(scope(), "s-1", {}))["success"] is False
    await unreachable.aclose()


async def test_generic_call_speaks_wit_names(platform_client: tuple[PlatformClient, Server]) -> None:
    client, server = platform_client
    created = await client.call(
        scope(),
        "scheduler",
        "create-schedule",
        {"input": {"endpoint": "/jobs/run", "cron": "* * * * *", "timezone": None}},
    )
    assert created == {"success": True, "schedule-id": "s-2", "error": None, "field-errors": None}
    page = await client.call(scope(), "clients", "list-clients", {"input": {"include-inactive": False}})
    assert page["total-count"] == 1
    assert page["items"][0]["client-id"] == "c-1"
    assert server.seen[-1].json()["input"] == {"includeInactive": False}
    schedule = await client.call(scope(), "scheduler", "get-schedule", {"schedule-id": "s-1"})
    assert schedule["endpoint-path"] == "/jobs/run"
    assert schedule["last-run-at"] == "2030-01-01T00:00:00Z"
    with pytest.raises(ValueError, match="no platform operation"):
        await client.call(scope(), "scheduler", "drop-tables", {})
    await client.aclose()
