"""The debug tail's public names, pinned: a change to them is a deliberate change to this test."""

from __future__ import annotations

from gateway_quart import debug


def test_public_names_are_pinned() -> None:
    assert set(debug.__all__) == {
        "Authorize", "DEFAULT_BLOCK_MS", "DEFAULT_BUFFER_SIZE", "DEFAULT_HEARTBEAT", "DEFAULT_LAST_N",
        "DEFAULT_MAX_TAILS", "DEFAULT_REAUTHORIZE_S", "DEFAULT_STREAM_PREFIX",
        "DebugCaller", "DebugCredentials", "LEVELS", "MAX_LAST_N",
        "PERMISSION", "STREAMS", "STREAM_PATH", "TailFilters", "TailSubscription", "create_debug_blueprint",
        "entry_to_event", "replay_and_tail", "stream_key",
    }
    assert len(debug.__all__) == len(set(debug.__all__))
    for name in debug.__all__:
        assert hasattr(debug, name), name
