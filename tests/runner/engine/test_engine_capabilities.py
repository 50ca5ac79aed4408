"""The alga:extension interfaces as a guest sees them: values, denials, and backend answers.

The ``caps`` guest calls every function once and reports each result as a header ("ok", "err:<case index>",
or "ok"/"failed" plus the error string for result records), with the values it received.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pytest
import trio
from wasmtime.component import Component, Linker

from runner_trio.capabilities import (
    ClientsCapability,
    HostCallError,
    HttpCapability,
    InvoicingCapability,
    LoggingCapability,
    SchedulerCapability,
    ServicesCapability,
    StorageCapability,
    StorageEntry,
    UiProxyCapability,
)
from runner_trio.capabilities import world_linker as build_linker
from runner_trio.capabilities.http import FetchResponse
from runner_trio.engine import (
    GuestError,
    GuestRequest,
    HostScope,
    Invocation,
    InvocationContext,
    UserInfo,
    WasmEngine,
    invoke,
)
from tests._timing import DEADLINE_SLACK_S

from .conftest import Events

GET = GuestRequest("GET", "/")

# Case indexes of the WIT error enums (the guest reports indexes).
SECRET = ("missing", "denied", "expired", "internal")
HTTP = ("invalid-url", "not-allowed", "transport", "internal")
STORAGE = ("missing", "conflict", "denied", "internal")
PROXY = ("route-not-found", "denied", "bad-request", "internal")
USER = ("not-available", "not-allowed")
SCHEDULER = ("not-found", "validation-failed", "quota-exceeded", "denied", "internal")
READ = ("not-allowed", "invalid-input", "internal")


def err(cases: tuple[str, ...], case: str) -> str:
    return f"err:{cases.index(case)}"


ALL_GRANTS = frozenset(
    {
        "cap:secrets.get",
        "cap:http.fetch",
        "cap:storage.kv",
        "cap:ui.proxy",
        "cap:scheduler.manage",
        "cap:invoice.manual.create",
        "cap:client.read",
        "cap:service.read",
    }
)

DENIED = {
    "secrets.get": err(SECRET, "denied"),
    "secrets.list-keys": "0",
    "http.fetch": err(HTTP, "not-allowed"),
    "storage.get": err(STORAGE, "denied"),
    "storage.put": err(STORAGE, "denied"),
    "storage.delete": err(STORAGE, "denied"),
    "storage.list-entries": err(STORAGE, "denied"),
    "ui-proxy.call-route": err(PROXY, "denied"),
    "scheduler.list-schedules": err(SCHEDULER, "denied"),
    "scheduler.get-schedule": err(SCHEDULER, "denied"),
    "scheduler.create-schedule": "failed",
    "scheduler.create-schedule.error": "denied",
    "scheduler.update-schedule": "failed",
    "scheduler.update-schedule.error": "denied",
    "scheduler.delete-schedule": "failed",
    "scheduler.delete-schedule.error": "denied",
    "scheduler.get-endpoints": err(SCHEDULER, "denied"),
    "invoicing.create-manual-invoice": "failed",
    "invoicing.create-manual-invoice.error": "denied",
    "clients.list-clients": err(READ, "not-allowed"),
    "clients.get-client": err(READ, "not-allowed"),
    "services.list-services": err(READ, "not-allowed"),
    "services.get-service": err(READ, "not-allowed"),
}


async def call_caps(engine: WasmEngine, linker: Linker, guest: Component, invocation: Invocation) -> dict[str, str]:
    response = await invoke(engine, linker, guest, GET, invocation, timeout=5)
    assert response.status == 200
    headers = dict(response.headers)
    assert len(headers) == len(response.headers)
    return headers


@pytest.mark.parametrize("grants", [frozenset(), ALL_GRANTS], ids=["not-granted", "granted-no-backend"])
async def test_context_is_visible_and_everything_else_is_denied(
    grants: frozenset[str],
    ticking: WasmEngine,
    linker: Linker,
    guests: dict[str, Component],
    make_invocation: Callable[..., Invocation],
) -> None:
    invocation = make_invocation(
        context=InvocationContext(
            tenant_id="tenant-1", extension_id="ext-1", request_id="req-9", install_id="inst-3", version_id=None
        ),
        grants=grants,
    )
    headers = await call_caps(ticking, linker, guests["caps"], invocation)
    assert headers == {
        "context.request-id": "req-9",
        "context.tenant-id": "tenant-1",
        "context.extension-id": "ext-1",
        "context.install-id": "inst-3",
        "user.get-user": err(USER, "not-available"),
        "user-v2.get-user": err(USER, "not-available"),
        **DENIED,
        # Granted but unconfigured, ui-proxy answers as the reference does.
        **({"ui-proxy.call-route": err(PROXY, "route-not-found")} if grants else {}),
    }
    assert invocation.counters["denied_calls"] == 19
    # Every call is counted under the interface it belongs to (usage calls.<capability>), denied ones included.
    calls = invocation.counters.calls()
    assert (calls["context"], calls["http"], calls["storage"], calls["secrets"]) == (1, 1, 4, 2)
    assert invocation.counters["host_calls"] >= sum(calls.values())
    assert invocation.counters["guest_runs"] == 1
    assert 0 < invocation.counters["guest_cpu_us"] <= invocation.counters["guest_wall_us"] + 1000


async def test_user_reaches_both_user_interfaces(
    ticking: WasmEngine, linker: Linker, guests: dict[str, Component], make_invocation: Callable[..., Invocation]
) -> None:
    user = UserInfo(
        user_id="u-1",
        user_email="ada@example.com",
        user_name="Ada",
        user_type="internal",
        client_name="Acme",
        client_id="client-7",
        additional_fields=(("dept", "ops"), ("level", "3")),
    )
    headers = await call_caps(ticking, linker, guests["caps"], make_invocation(user=user))
    assert {key: value for key, value in headers.items() if key.startswith("user")} == {
        "user.get-user": "ok",
        "user.tenant-id": "tenant-1",
        "user.client-name": "Acme",
        "user.user-id": "u-1",
        "user.user-email": "ada@example.com",
        "user.user-name": "Ada",
        "user.user-type": "internal",
        "user-v2.get-user": "ok",
        "user-v2.client-id": "client-7",
        "user-v2.additional-fields": "2",
        "user-v2.field.dept": "ops",
        "user-v2.field.level": "3",
    }


async def test_guest_logs_become_events_and_log_records(
    ticking: WasmEngine,
    linker: Linker,
    guests: dict[str, Component],
    make_invocation: Callable[..., Invocation],
    events: Events,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="runner_trio.guest")
    await call_caps(ticking, linker, guests["caps"], make_invocation())
    assert events.items == [("info", "log", "hello from the caps guest")]
    [record] = [r for r in caplog.records if r.name == "runner_trio.guest"]
    assert record.getMessage() == "guest: hello from the caps guest"
    assert (record.tenant_id, record.extension_id, record.request_id) == ("tenant-1", "ext-1", "req-1")  # type: ignore[attr-defined]


async def test_guest_logs_past_the_cap_are_counted_not_sent(
    ticking: WasmEngine, guests: dict[str, Component], make_invocation: Callable[..., Invocation], events: Events
) -> None:
    linker = build_linker(ticking, [LoggingCapability(max_events=0)])
    invocation = make_invocation()
    await call_caps(ticking, linker, guests["caps"], invocation)
    assert events.items == []
    assert invocation.counters["log_events_dropped"] == 1


class Secrets:
    async def get(self, key: str) -> str:
        await trio.lowlevel.checkpoint()
        if key != "api-key":
            raise HostCallError("missing")
        return "s3cret"

    async def list_keys(self) -> Sequence[str]:
        return ["api-key", "other"]


class Http:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, list[tuple[str, str]], bytes | None, str]] = []

    async def fetch(
        self, scope: HostScope, method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes | None
    ) -> Any:
        self.seen.append((method, url, list(headers), body, scope.tenant_id))

        return FetchResponse(201, [("x", "y")], b"created")


class Storage:
    async def get(self, scope: HostScope, namespace: str, key: str) -> StorageEntry:
        return StorageEntry(namespace, key, b"stored", 7)

    async def put(self, scope: HostScope, entry: StorageEntry) -> StorageEntry:
        raise HostCallError("conflict")

    async def delete(self, scope: HostScope, namespace: str, key: str) -> None:
        return None

    async def list_entries(self, scope: HostScope, namespace: str, cursor: str | None) -> Sequence[StorageEntry]:
        return [StorageEntry(namespace, "a", b"1"), StorageEntry(namespace, "b", b"2", 3)]


class Proxy:
    async def call_route(
        self, scope: HostScope, route: str, payload: bytes | None, *, api_key: str | None = None
    ) -> bytes:
        raise HostCallError("route-not-found")


class Platform:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Mapping[str, Any]]] = []

    async def call(self, scope: HostScope, interface: str, operation: str, payload: Mapping[str, Any]) -> Any:
        self.calls.append((interface, operation, payload))
        answers: dict[tuple[str, str], Any] = {
            ("scheduler", "list-schedules"): [],
            ("scheduler", "get-schedule"): None,
            ("scheduler", "create-schedule"): {"success": True, "schedule-id": "s9"},
            ("scheduler", "delete-schedule"): {"success": True},
            ("scheduler", "get-endpoints"): [
                {"id": "e1", "method": "GET", "path": "/x", "handler": "h", "schedulable": True}
            ],
            ("invoicing", "create-manual-invoice"): {"success": True, "invoice-id": "inv-1", "total": 12.5},
            ("clients", "list-clients"): {"items": [], "total-count": 0, "page": 1, "page-size": 25},
            ("clients", "get-client"): {
                "client-id": "c1",
                "client-name": "Acme",
                "client-type": None,
                "is-inactive": False,
                "default-currency-code": "EUR",
                "account-manager-id": None,
                "account-manager-name": None,
                "billing-email": None,
            },
        }
        if (interface, operation) == ("scheduler", "update-schedule"):
            raise HostCallError("validation-failed")
        if (interface, operation) == ("services", "list-services"):
            raise HostCallError("invalid-input")
        if (interface, operation) == ("services", "get-service"):
            raise HostCallError("quota-exceeded")  # not a service-read-error case: becomes `internal`
        return answers[(interface, operation)]


async def test_backends_answer_through_the_glue(
    ticking: WasmEngine, guests: dict[str, Component], make_invocation: Callable[..., Invocation]
) -> None:
    http, platform = Http(), Platform()
    linker = build_linker(
        ticking,
        [
            HttpCapability(http),
            StorageCapability(Storage()),
            UiProxyCapability(Proxy()),
            SchedulerCapability(platform),
            InvoicingCapability(platform),
            ClientsCapability(platform),
            ServicesCapability(platform),
        ],
    )
    invocation = make_invocation(grants=ALL_GRANTS, secrets=Secrets())
    headers = await call_caps(ticking, linker, guests["caps"], invocation)
    assert headers == {
        "context.request-id": "req-1",
        "context.tenant-id": "tenant-1",
        "context.extension-id": "ext-1",
        "user.get-user": err(USER, "not-available"),
        "user-v2.get-user": err(USER, "not-available"),
        "secrets.get": "ok",
        "secrets.get.value": "s3cret",
        "secrets.list-keys": "2",
        "http.fetch": "ok",
        "http.fetch.status": "201",
        "storage.get": "ok",
        "storage.get.value": "stored",
        "storage.get.revision": "7",
        "storage.put": err(STORAGE, "conflict"),
        "storage.delete": "ok",
        "storage.list-entries": "ok",
        "ui-proxy.call-route": err(PROXY, "route-not-found"),
        "scheduler.list-schedules": "ok",
        "scheduler.get-schedule": "ok",
        "scheduler.create-schedule": "ok",
        "scheduler.update-schedule": "failed",
        "scheduler.update-schedule.error": "validation-failed",
        "scheduler.delete-schedule": "ok",
        "scheduler.get-endpoints": "ok",
        "invoicing.create-manual-invoice": "ok",
        "clients.list-clients": "ok",
        "clients.get-client": "ok",
        "services.list-services": err(READ, "invalid-input"),
        "services.get-service": err(READ, "internal"),
    }
    assert http.seen == [("GET", "https://example.com/", [], None, "tenant-1")]
    payloads = {(interface, operation): payload for interface, operation, payload in platform.calls}
    assert payloads[("scheduler", "create-schedule")] == {
        "input": {
            "endpoint": "/endpoint",
            "cron": "*/5 * * * *",
            "timezone": None,
            "enabled": None,
            "name": None,
            "payload": None,
        }
    }
    assert payloads[("scheduler", "update-schedule")]["schedule-id"] == "s1"
    assert payloads[("invoicing", "create-manual-invoice")]["input"]["items"] == []
    assert invocation.counters["denied_calls"] == 0


async def test_a_backend_bug_is_reraised_by_invoke(
    ticking: WasmEngine, guests: dict[str, Component], make_invocation: Callable[..., Invocation]
) -> None:
    class Broken(Storage):
        async def get(self, scope: HostScope, namespace: str, key: str) -> StorageEntry:
            raise KeyError("bug in the backend")

    linker = build_linker(ticking, [StorageCapability(Broken())])
    with pytest.raises(KeyError, match="bug in the backend"):
        await invoke(ticking, linker, guests["caps"], GET, make_invocation(grants=ALL_GRANTS), timeout=5)


async def test_an_outer_cancellation_reaches_a_waiting_backend(
    ticking: WasmEngine, guests: dict[str, Component], make_invocation: Callable[..., Invocation]
) -> None:
    cancelled = trio.Event()

    class Slow(Http):
        async def fetch(self, *args: Any) -> Any:
            try:
                await trio.sleep(30)
            finally:
                cancelled.set()

    linker = build_linker(ticking, [HttpCapability(Slow())])
    with trio.move_on_after(0.2) as scope:
        await invoke(ticking, linker, guests["caps"], GET, make_invocation(grants=ALL_GRANTS), timeout=30)
    assert scope.cancelled_caught  # the client went away: Cancelled, not a timeout
    assert cancelled.is_set()
    assert trio.to_thread.current_default_thread_limiter().statistics().borrowed_tokens == 0


async def test_a_slow_backend_is_cancelled_at_the_deadline(
    ticking: WasmEngine, guests: dict[str, Component], make_invocation: Callable[..., Invocation]
) -> None:
    cancelled = trio.Event()

    class Slow(Http):
        async def fetch(self, *args: Any) -> Any:
            try:
                await trio.sleep(30)
            finally:
                cancelled.set()

    linker = build_linker(ticking, [HttpCapability(Slow())])
    start = trio.current_time()
    with pytest.raises(GuestError) as info:
        await invoke(ticking, linker, guests["caps"], GET, make_invocation(grants=ALL_GRANTS), timeout=0.3)
    assert info.value.kind == "timeout"
    assert trio.current_time() - start < 0.3 + DEADLINE_SLACK_S  # not the backend's 30 s
    assert cancelled.is_set()


async def test_a_guest_log_line_cannot_forge_runner_log_lines(
    make_invocation: Callable[..., Invocation], events: Events, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="runner_trio.guest")
    forged = "ok\n2026-12-06 06:00:00,000 ERROR runner_trio: forged\rline"
    LoggingCapability().log(make_invocation(), "info", logging.INFO, forged)
    [record] = [r for r in caplog.records if r.name == "runner_trio.guest"]
    assert record.getMessage() == "guest: ok\\n2026-12-06 06:00:00,000 ERROR runner_trio: forged\\rline"
    assert record.tenant_id == "tenant-1"  # type: ignore[attr-defined]
    assert events.items == [("info", "log", forged)]  # the debug event keeps the guest's own text (JSON-encoded)
