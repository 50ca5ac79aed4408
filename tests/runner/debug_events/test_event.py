"""The event value, its stream layout, and the character-boundary cut."""

from __future__ import annotations

import pytest

from runner_trio import debug_events
from runner_trio.debug_events import DebugEvent, InvalidDebugEvent, clip_message, event_fields, stream_key


def test_public_names_are_pinned() -> None:
    assert set(debug_events.__all__) == {
        "BUDGET_EXHAUSTED_MESSAGE",
        "DEFAULT_BATCH_SIZE",
        "DEFAULT_BYTES_PER_INVOCATION",
        "DEFAULT_EVENTS_PER_INVOCATION",
        "DEFAULT_MAXLEN",
        "DEFAULT_MAX_EVENT_BYTES",
        "DEFAULT_QUEUE_SIZE",
        "DEFAULT_RECONNECT_INITIAL_DELAY",
        "DEFAULT_RECONNECT_MAX_DELAY",
        "DEFAULT_SOCKET_TIMEOUT",
        "DEFAULT_STREAM_PREFIX",
        "LEVELS",
        "STREAMS",
        "DebugEvent",
        "DebugEventError",
        "DebugEventPublisher",
        "InvalidDebugEvent",
        "InvocationContext",
        "InvocationEvents",
        "Level",
        "PublisherStatistics",
        "Stream",
        "clip_message",
        "event_fields",
        "now_ms",
        "stream_key",
    }
    assert debug_events.DEFAULT_STREAM_PREFIX == "ext-debug:"
    assert debug_events.DEFAULT_MAXLEN == 2000
    assert debug_events.DEFAULT_MAX_EVENT_BYTES == 8192


def test_stream_key_lower_cases_the_ids() -> None:
    assert stream_key("ext-debug:", "Tenant-A", "Com.Acme.Ext") == "ext-debug:tenant-a:com.acme.ext"


def test_fields_follow_the_contract_order_and_skip_unset_ones() -> None:
    full = DebugEvent(
        ts=1700000000123,
        level="warn",
        stream="stderr",
        tenant="t1",
        extension="e1",
        install="i1",
        request="r1",
        version="v1",
        content_hash="sha256:" + "a" * 64,
        message="hi",
        truncated=True,
    )
    assert event_fields(full) == [
        "ts", "1700000000123", "level", "warn", "stream", "stderr", "tenant", "t1", "extension", "e1",
        "install", "i1", "request", "r1", "version", "v1", "content_hash", "sha256:" + "a" * 64,
        "message", "hi", "truncated", "1",
    ]  # fmt: skip
    bare = DebugEvent(ts=5, level="info", stream="log", tenant="t1", extension="e1", message="")
    assert event_fields(bare) == [
        "ts", "5", "level", "info", "stream", "log", "tenant", "t1", "extension", "e1", "message", "", "truncated", "0",
    ]  # fmt: skip


@pytest.mark.parametrize(("level", "stream"), [("fatal", "log"), ("info", "stdin"), ("INFO", "log")])
def test_levels_and_streams_outside_the_contract_are_refused(level: str, stream: str) -> None:
    with pytest.raises(InvalidDebugEvent):
        DebugEvent(level=level, stream=stream, tenant="t", extension="e", message="x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("héllo", 2, "h"),  # é is 2 bytes: never split
        ("héllo", 3, "hé"),
        ("日本語", 5, "日"),  # 3-byte characters
        ("日本語", 6, "日本"),
        ("😀😀", 7, "😀"),  # 4-byte characters
        ("😀😀", 3, ""),
        ("ascii", 5, "ascii"),
    ],
)
def test_clip_cuts_on_a_character_boundary(text: str, limit: int, expected: str) -> None:
    clipped, size, truncated = clip_message(text, limit)
    assert clipped == expected
    assert size == len(expected.encode("utf-8")) <= limit
    assert truncated is (expected != text)


def test_clip_replaces_lone_surrogates_so_the_message_always_encodes() -> None:
    clipped, size, truncated = clip_message("a\udcffb", 100)
    assert clipped.startswith("a")
    assert clipped.endswith("b")
    assert "\ufffd" in clipped
    assert size == len(clipped.encode("utf-8"))
    assert not truncated
