"""Errors of the debug-event publisher.

The tree::

    DebugEventError          base; ``code`` is stable
    └── InvalidDebugEvent    a level or stream outside the contract's values (a programming error upstream)

Publishing itself never raises: Redis being slow, down or misconfigured shows up as dropped-event counts, not
as exceptions in the invocation that produced the event.
"""

from __future__ import annotations

__all__ = ["DebugEventError", "InvalidDebugEvent"]


class DebugEventError(Exception):
    """Base of the debug-event errors."""

    code: str = "debug_event_error"


class InvalidDebugEvent(DebugEventError, ValueError):
    """An event names a level or stream the wire contract does not know."""

    code = "invalid_debug_event"
