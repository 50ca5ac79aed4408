"""The forwarding interfaces: ``scheduler``, ``invoicing``, ``clients``, ``services``.

Each forwards its calls to the platform API through one :class:`PlatformBackend` (the reference sends them to
``/api/internal/ext-<interface>/install/{id}``). Arguments reach the backend as plain data: records become
dicts with the WIT (kebab-case) names, keyed by the WIT parameter names; the backend answers in the same shape
(``None`` for an absent ``option``) or raises :class:`HostCallError`.

Not granted, or no backend: ``result`` operations answer the interface's denial case (``denied`` for the
scheduler, ``not-allowed`` for clients and services), and operations returning a result record answer
``success = false, error = "denied"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, final

from wasmtime.component import Record

from ...engine import (
    Err,
    HostScope,
    Invocation,
    LinkerInstanceBuilder,
    Ok,
    call_backend,
    host_function,
    mapping_to_record,
    record_to_mapping,
)
from .._errors import HostCallError
from .._unit import CapabilityBase, aclose_backend, denied, guest_error, interface_name

__all__ = [
    "READ_ERRORS",
    "SCHEDULER_ERRORS",
    "ClientsCapability",
    "InvoicingCapability",
    "Operation",
    "PlatformBackend",
    "PlatformCapability",
    "SchedulerCapability",
    "ServicesCapability",
]


class PlatformBackend(Protocol):
    """Forwards ``interface.operation(payload)`` to the platform for ``scope``'s install."""

    async def call(self, scope: HostScope, interface: str, operation: str, payload: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class Operation:
    """One WIT function: its parameter names, and either a ``result`` or a result-record return."""

    name: str
    params: tuple[str, ...] = ()
    record_fields: tuple[str, ...] = ()
    """Fields of the returned record (``success`` first); empty when the function returns a ``result``."""


SCHEDULER_ERRORS: Final = frozenset({"not-found", "validation-failed", "quota-exceeded", "denied", "internal"})
READ_ERRORS: Final = frozenset({"not-allowed", "invalid-input", "internal"})


class PlatformCapability(CapabilityBase):
    """Shared glue of the forwarding interfaces; subclasses fix ``name``, ``grant`` and the operations."""

    name: str
    grant: str | None
    errors: frozenset[str]
    denial: str
    operations: tuple[Operation, ...]

    def __init__(self, backend: PlatformBackend | None = None) -> None:
        self.backend = backend

    async def aclose(self) -> None:
        # The four interfaces share one client; closing it is idempotent.
        await aclose_backend(self.backend)

    def link(self, root: LinkerInstanceBuilder) -> None:
        with root.add_instance(interface_name(self.name)) as instance:
            for operation in self.operations:
                instance.add_func(operation.name, host_function(self._bind(operation)))

    def _bind(self, operation: Operation) -> Callable[..., Any]:
        def call(invocation: Invocation, *args: Any) -> Any:
            return self.call(invocation, operation, *args)

        call.__qualname__ = f"{type(self).__name__}.{operation.name}"
        return call

    def call(self, invocation: Invocation, operation: Operation, *args: Any) -> Any:
        """Run ``operation`` for the guest: denial, backend answer, or the backend's error case."""
        backend = self.backend
        if backend is None or not invocation.allows(self.grant):
            if operation.record_fields:
                return denied(invocation, _failed_record(operation, "denied"))
            return denied(invocation, Err(self.denial))
        payload = {name: record_to_mapping(arg) for name, arg in zip(operation.params, args, strict=True)}
        try:
            answer = call_backend(invocation, backend.call, invocation.host_scope, self.name, operation.name, payload)
        except HostCallError as exc:
            if operation.record_fields:
                invocation.counters.add("host_errors")
                return _failed_record(operation, exc.variant)
            return guest_error(invocation, exc, self.errors)
        if operation.record_fields:
            return _complete_record(operation, answer)
        return Ok(mapping_to_record(answer))


def _failed_record(operation: Operation, error: str) -> Record:
    return _complete_record(operation, {"success": False, "error": error})


def _complete_record(operation: Operation, answer: Mapping[str, Any]) -> Record:
    """The result record with every field present (absent options are None)."""
    record = Record()
    for field_name in operation.record_fields:
        value = answer.get(field_name)
        if field_name == "success":
            value = bool(value)
        setattr(record, field_name, mapping_to_record(value))
    return record


@final
class SchedulerCapability(PlatformCapability):
    """``alga:extension/scheduler`` (``cap:scheduler.manage``)."""

    name = "scheduler"
    grant: str | None = "cap:scheduler.manage"
    errors = SCHEDULER_ERRORS
    denial = "denied"
    operations = (
        Operation("list-schedules"),
        Operation("get-schedule", ("schedule-id",)),
        Operation("create-schedule", ("input",), ("success", "schedule-id", "error", "field-errors")),
        Operation("update-schedule", ("schedule-id", "input"), ("success", "error", "field-errors")),
        Operation("delete-schedule", ("schedule-id",), ("success", "error")),
        Operation("get-endpoints"),
    )


@final
class InvoicingCapability(PlatformCapability):
    """``alga:extension/invoicing`` (``cap:invoice.manual.create``)."""

    name = "invoicing"
    grant: str | None = "cap:invoice.manual.create"
    errors = frozenset({"denied", "internal"})
    denial = "denied"
    operations = (
        Operation(
            "create-manual-invoice",
            ("input",),
            (
                "success",
                "invoice-id",
                "invoice-number",
                "status",
                "subtotal",
                "tax",
                "total",
                "error",
                "field-errors",
            ),
        ),
    )


@final
class ClientsCapability(PlatformCapability):
    """``alga:extension/clients`` (``cap:client.read``)."""

    name = "clients"
    grant: str | None = "cap:client.read"
    errors = READ_ERRORS
    denial = "not-allowed"
    operations = (Operation("list-clients", ("input",)), Operation("get-client", ("client-id",)))


@final
class ServicesCapability(PlatformCapability):
    """``alga:extension/services`` (``cap:service.read``)."""

    name = "services"
    grant: str | None = "cap:service.read"
    errors = READ_ERRORS
    denial = "not-allowed"
    operations = (Operation("list-services", ("input",)), Operation("get-service", ("service-id",)))
