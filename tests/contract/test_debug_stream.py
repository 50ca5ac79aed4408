"""The debug-stream layout: the key, the entry fields and the JSON event, as both services use them."""

from __future__ import annotations

import pytest

import contract
from gateway_quart import debug as gateway_debug
from runner_trio import debug_events

HASH = "sha256:" + "a" * 64


def test_both_services_use_the_contracts_layout() -> None:
    assert debug_events.stream_key is contract.stream_key is gateway_debug.stream_key
    assert gateway_debug.entry_to_event is contract.entry_to_event
    assert debug_events.LEVELS == gateway_debug.LEVELS == contract.LEVELS == ("trace", "debug", "info", "warn", "error")
    assert debug_events.STREAMS == gateway_debug.STREAMS == contract.STREAMS == ("stdout", "stderr", "log")
    assert debug_events.DEFAULT_STREAM_PREFIX == gateway_debug.DEFAULT_STREAM_PREFIX == contract.DEFAULT_STREAM_PREFIX


def test_stream_key_builds_and_parses() -> None:
    key = contract.stream_key("ext-debug:", "Tenant-A", "Com.Acme.Ext")
    assert key == "ext-debug:tenant-a:com.acme.ext"
    assert contract.parse_stream_key("ext-debug:", key) == ("tenant-a", "com.acme.ext")
    assert contract.parse_stream_key("p:", contract.stream_key("p:", "t@x", "e")) == ("t@x", "e")


@pytest.mark.parametrize(
    "key", ["other:t:e", "ext-debug:t", "ext-debug:t:", "ext-debug::e", "ext-debug:a:b:c", "ext-debug:t:e f"]
)
def test_stream_key_refused(key: str) -> None:
    with pytest.raises(contract.InvalidStreamKey):
        contract.parse_stream_key("ext-debug:", key)


def test_a_colon_in_either_part_would_share_another_tenants_stream() -> None:
    # The runner accepts ":" in tenant and extension ids, so these two invocations write to one key ...
    assert contract.is_id("a:b")
    assert contract.is_id("b:c")
    assert contract.stream_key("p:", "a", "b:c") == contract.stream_key("p:", "a:b", "c")
    # ... which is why no tail opens a stream named with one.
    for part in ("a:b", "b:c"):
        assert not contract.is_stream_key_part(part)
    for part in ("acme", "com.acme.ext", "user@vendor", "Tenant-A"):
        assert contract.is_stream_key_part(part)


def test_entry_fields_in_layout_order_and_back_as_the_reference_json_event() -> None:
    fields = contract.entry_fields(
        ts=1700000000123, level="warn", stream="stderr", message="hi", truncated=True,
        context={"tenant": "t1", "extension": "e1", "install": "i1", "request": "r1", "version": None,
                 "content_hash": HASH},
    )
    assert fields == ["ts", "1700000000123", "level", "warn", "stream", "stderr", "tenant", "t1", "extension", "e1",
                      "install", "i1", "request", "r1", "content_hash", HASH, "message", "hi", "truncated", "1"]
    # What Redis hands back to the tail: bytes, field by field.
    entry = {name.encode(): value.encode() for name, value in zip(fields[::2], fields[1::2], strict=True)}
    event = contract.entry_to_event(b"1700000000123-0", entry)
    assert event == {"id": "1700000000123-0", "ts": "1700000000123", "level": "warn", "stream": "stderr",
                     "tenantId": "t1", "extensionId": "e1", "installId": "i1", "requestId": "r1",
                     "contentHash": HASH, "message": "hi", "truncated": True}
    assert set(event) - {"id"} <= set(contract.JSON_NAMES.values())


def test_the_runners_event_writes_the_contracts_fields() -> None:
    event = debug_events.DebugEvent(ts=5, level="info", stream="log", tenant="t", extension="e", message="m")
    assert debug_events.event_fields(event) == contract.entry_fields(
        ts=5, level="info", stream="log", message="m", truncated=False, context={"tenant": "t", "extension": "e"}
    )


def test_an_entry_missing_fields_reads_with_the_references_defaults() -> None:
    assert contract.entry_to_event("1-0", {}) == {"id": "1-0", "ts": "", "level": "info", "stream": "log",
                                                  "message": "", "truncated": False}
