"""Host-function exceptions travel per thread: under concurrency each invocation sees only its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
from wasmtime.component import Component

from runner_trio.capabilities import interface_name
from runner_trio.capabilities import world_linker as build_linker
from runner_trio.engine import (
    GuestRequest,
    Invocation,
    InvocationContext,
    LinkerInstanceBuilder,
    Ok,
    WasmEngine,
    host_function,
    invoke,
)


class HostBug(Exception):
    pass


class FlakySecrets:
    """Raises for every third request id, returns a value of the wrong type for every fifth, else answers."""

    name = "secrets"
    grant: str | None = None

    def link(self, root: LinkerInstanceBuilder) -> None:
        with root.add_instance(interface_name(self.name)) as instance:
            instance.add_func("get", host_function(self.get))
            instance.add_func("list-keys", host_function(lambda invocation: []))

    @staticmethod
    def get(invocation: Invocation, key: str) -> Any:
        number = int(str(invocation.context.request_id))
        if number % 3 == 0:
            raise HostBug(number)
        if number % 5 == 0:
            return 12345  # not a result: the conversion after the host function fails
        return Ok(f"value-{number}")


async def test_host_exceptions_never_leak_across_threads(
    ticking: WasmEngine, guests: dict[str, Component], make_invocation: Callable[..., Invocation]
) -> None:
    linker = build_linker(ticking, [FlakySecrets()])
    outcomes: dict[int, object] = {}

    async def worker(first: int) -> None:
        for number in range(first, first + 50):
            invocation = make_invocation(
                context=InvocationContext(tenant_id="t", extension_id="e", request_id=str(number))
            )
            try:
                response = await invoke(
                    ticking, linker, guests["caps"], GuestRequest("GET", "/"), invocation, timeout=10
                )
            except HostBug as exc:
                outcomes[number] = ("bug", exc.args[0])
            except Exception as exc:
                outcomes[number] = ("error", type(exc).__name__)
            else:
                outcomes[number] = ("ok", dict(response.headers)["secrets.get.value"])

    limiter = trio.CapacityLimiter(8)
    async with trio.open_nursery() as nursery:
        for first in range(1, 400, 50):
            nursery.start_soon(_limited, limiter, worker, first)
    assert len(outcomes) == 400
    for number, outcome in outcomes.items():
        if number % 3 == 0:
            assert outcome == ("bug", number)
        elif number % 5 == 0:
            assert outcome[0] == "error"
        else:
            assert outcome == ("ok", f"value-{number}")


async def _limited(limiter: trio.CapacityLimiter, fn: Callable[[int], Any], arg: int) -> None:
    async with limiter:
        await fn(arg)


def test_host_function_outside_an_invocation_traps_instead_of_raising() -> None:
    import wasmtime

    wrapped = host_function(lambda invocation: "never")
    with pytest.raises(wasmtime.WasmtimeError, match="LookupError"):
        wrapped(None)
