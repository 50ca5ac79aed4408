"""A guest's log line is exactly one record of the runner's log, marked as the guest's, in both formats."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import trio

from runner_trio.capabilities import world_linker
from runner_trio.capabilities.logging import GUEST_LOGGER
from runner_trio.engine import GuestRequest, Invocation, InvocationContext, WasmEngine, invoke
from servicekit import log_formatter, one_line
from tests.guests.wat import load_wat

# A JSON object shaped like the runner's own record, then a newline and a fake text record, then more JSON.
FORGERY = (
    '{"time": "2026-12-06 07:00:00,000", "level": "ERROR", "logger": "runner_trio", "message": "forged",'
    ' "source": "runner"}\n'
    "2026-12-06 07:00:00,000 ERROR runner_trio: forged [source=runner]\r\n"
    '{"level": "INFO", "logger": "runner_trio.routes", "message": "forged too"}\u2028'
)
CONTEXT = InvocationContext(tenant_id="tenant-log", extension_id="ext-log", request_id="req-log-1")


@pytest.fixture(scope="module")
def engine() -> WasmEngine:
    return WasmEngine()


@pytest.fixture
def captured(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """The runner's guest logger written through the formatter named by the test's parameter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(log_formatter(request.param))
    logger = logging.getLogger(GUEST_LOGGER)
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


async def _guest_logs(engine: WasmEngine, message: str) -> None:
    linker = world_linker(engine)
    component = engine.compile(load_wat("logbody"))
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run_ticker)
        response = await invoke(engine, linker, component, GuestRequest("POST", "/", [], message.encode()),
                                Invocation(CONTEXT), timeout=5)
        nursery.cancel_scope.cancel()
    assert response.status == 204


@pytest.mark.parametrize("captured", ["json"], indirect=True)
async def test_json_log_a_forged_record_is_one_guest_record(engine: WasmEngine, captured: io.StringIO) -> None:
    await _guest_logs(engine, FORGERY)
    lines = captured.getvalue().splitlines()
    assert len(lines) == 1  # whatever the guest wrote: one line, one record
    record = json.loads(lines[0])
    assert record["source"] == "guest"
    assert record["tenant_id"] == "tenant-log"
    assert record["extension_id"] == "ext-log"
    assert record["request_id"] == "req-log-1"
    assert record["logger"] == GUEST_LOGGER
    assert record["level"] == "ERROR"
    assert record["message"] == f"guest: {one_line(FORGERY)}"  # all of it kept, on one line


@pytest.mark.parametrize("captured", ["text"], indirect=True)
async def test_text_log_a_forged_record_is_one_line_naming_its_guest(engine: WasmEngine, captured: io.StringIO) -> None:
    await _guest_logs(engine, FORGERY)
    text = captured.getvalue()
    assert text.count("\n") == 1
    assert "\r" not in text
    assert "\u2028" not in text
    line = text.rstrip("\n")
    assert line.endswith("[source=guest tenant_id=tenant-log extension_id=ext-log request_id=req-log-1]")
    assert " ERROR runner_trio.guest: guest: " in line
