"""The call journal at the engine's one host-call door: recorded calls with stable names and tagged values, a
replay answered from the record without running anything, and a divergence at the call that differs."""

from __future__ import annotations

import dataclasses
import json

import pytest
from wasmtime.component import Linker, Record

from runner_trio.capabilities import interface_name, world_linker
from runner_trio.engine import (
    CallRecorder,
    CallReplayer,
    Err,
    GuestError,
    GuestRequest,
    Invocation,
    InvocationContext,
    LinkerInstanceBuilder,
    Ok,
    ReplayDivergence,
    WasmEngine,
    decode_value,
    encode_value,
    host_function,
    invoke,
    redact,
    secret_placeholder,
    wit_record,
)
from tests.runner.journal.wat import clocklog

from .conftest import Events

GET = GuestRequest("GET", "/")


def invocation(events: Events | None = None) -> Invocation:
    return Invocation(context=InvocationContext(tenant_id="t", extension_id="e"), events=events)


def test_values_round_trip_through_the_tagged_encoding() -> None:
    record = wit_record(status=200, headers=[wit_record(name="a", value="b")], body=b"\x00\xff")
    value = [Ok(record), Err("denied"), (1, 2), None, "x", 3.5]
    encoded = encode_value(value)
    assert encoded == [
        {"$v": "ok", "p": {"$r": {"status": 200, "headers": [{"$r": {"name": "a", "value": "b"}}],
                                  "body": {"$b": "AP8="}}}},
        {"$v": "err", "p": "denied"},
        {"$t": [1, 2]},
        None,
        "x",
        3.5,
    ]
    assert json.loads(json.dumps(encoded)) == encoded
    decoded = decode_value(encoded)
    assert encode_value(decoded) == encoded
    assert isinstance(decoded[0].payload, Record)


def test_redaction_reaches_strings_bytes_and_substrings() -> None:
    doc = {"a": "Bearer hunter2!", "b": {"$b": "aHVudGVyMg=="}, "body_b64": "eGh1bnRlcjJ4", "list": ["hunter2"]}
    cleaned = redact(doc, {"hunter2": "pw"})
    text = json.dumps(cleaned, ensure_ascii=False)
    assert "hunter2" not in text
    assert cleaned["a"] == f"Bearer {secret_placeholder('pw')}!"
    assert cleaned["list"] == ["«secret:pw»"]


async def test_record_then_replay_identically(ticking: WasmEngine, linker: Linker, events: Events) -> None:
    component = ticking.compile(clocklog())
    recorder = CallRecorder()
    recorded = await invoke(ticking, linker, component, GET, dataclasses.replace(invocation(events), journal=recorder),
                            timeout=5)
    parts = recorder.document_parts()
    calls = parts["calls"]
    assert [call["fn"] for call in calls] == [
        "wasi:clocks/wall-clock#now", "alga:extension/logging#log-info", "alga:extension/logging#log-info",
    ]
    assert [call["args"] for call in calls] == [[], ["one"], ["two"]]
    seconds = calls[0]["result"]["$r"]["seconds"]
    assert recorded.body == seconds.to_bytes(8, "little")
    assert [line["text"] for line in parts["output"]] == ["one", "two"]

    replayer = CallReplayer(calls)
    replayed = await invoke(ticking, linker, component, GET, dataclasses.replace(invocation(), journal=replayer),
                            timeout=5)
    assert replayer.finish() is None
    assert replayer.calls_replayed == 3
    assert replayed == recorded  # the clock answered from the record: byte for byte
    assert replayer.output_lines == []  # the log calls were answered from the record: nothing logged again


@pytest.mark.parametrize(("second_fn", "second_arg", "reason"), [
    ("log-warn", "two", "instead of"),
    ("log-info", "TWO", "other arguments"),
])
async def test_replay_against_a_changed_guest_diverges_at_the_call(
    ticking: WasmEngine, linker: Linker, second_fn: str, second_arg: str, reason: str
) -> None:
    recorder = CallRecorder()
    await invoke(ticking, linker, ticking.compile(clocklog()), GET,
                 dataclasses.replace(invocation(), journal=recorder), timeout=5)
    replayer = CallReplayer(recorder.document_parts()["calls"])
    changed = ticking.compile(clocklog(second_fn, second_arg))
    with pytest.raises(ReplayDivergence) as caught:
        await invoke(ticking, linker, changed, GET, dataclasses.replace(invocation(), journal=replayer), timeout=5)
    divergence = caught.value
    assert divergence.index == 2
    assert reason in divergence.reason
    assert divergence.expected == {"fn": "alga:extension/logging#log-info", "args": ["two"]}
    assert divergence.actual == {"fn": f"alga:extension/logging#{second_fn}", "args": [second_arg]}
    assert replayer.calls_replayed == 2


async def test_replay_reports_calls_the_guest_never_made(ticking: WasmEngine, linker: Linker) -> None:
    recorder = CallRecorder()
    component = ticking.compile(clocklog())
    await invoke(ticking, linker, component, GET, dataclasses.replace(invocation(), journal=recorder), timeout=5)
    calls = recorder.document_parts()["calls"]
    extra = {"i": 3, "fn": "alga:extension/logging#log-info", "args": ["three"], "result": None}
    replayer = CallReplayer([*calls, extra])
    await invoke(ticking, linker, component, GET, dataclasses.replace(invocation(), journal=replayer), timeout=5)
    divergence = replayer.finish()
    assert divergence is not None
    assert divergence.index == 3
    assert divergence.actual is None


class HostBug(Exception):
    pass


class BrokenLogging:
    """``log-info("two")`` raises (a host bug): the guest traps, the record says so."""

    name = "logging"
    grant: str | None = None

    def link(self, root: LinkerInstanceBuilder) -> None:
        with root.add_instance(interface_name(self.name)) as instance:
            instance.add_func("log-info", host_function(self.log))
            instance.add_func("log-warn", host_function(self.log))
            instance.add_func("log-error", host_function(self.log))

    @staticmethod
    def log(invocation: Invocation, message: str) -> None:
        if message == "two":
            raise HostBug(message)


async def test_a_host_function_that_raised_is_recorded_and_replayed_as_a_trap(ticking: WasmEngine) -> None:
    linker = world_linker(ticking, [BrokenLogging()])
    component = ticking.compile(clocklog())
    recorder = CallRecorder()
    with pytest.raises(HostBug):
        await invoke(ticking, linker, component, GET, dataclasses.replace(invocation(), journal=recorder), timeout=5)
    calls = recorder.document_parts()["calls"]
    assert calls[-1]["fn"] == "alga:extension/logging#log-info"
    assert calls[-1]["result"] == {"$trap": "HostBug"}
    replayer = CallReplayer(calls)
    with pytest.raises(GuestError) as caught:  # the replay traps where the recording did, without the host bug
        await invoke(ticking, linker, component, GET, dataclasses.replace(invocation(), journal=replayer), timeout=5)
    assert caught.value.kind == "trap"
    assert replayer.calls_replayed == 3
