"""``alga:extension/logging``: guest log lines become debug events and stdlib log records.

Always granted (``cap:log.emit``). Each ``log-*`` call emits one event with stream ``log`` and level
``info``/``warn``/``error`` to the invocation's sink, and one record on the ``runner_trio.guest`` logger
carrying ``source="guest"`` and tenant, extension and request ids (fields in the JSON log, appended to the
line in the text log). Past ``max_events`` calls per invocation further lines are only counted
(``log_events_dropped``): a guest looping over ``log-info`` must not flood the debug stream.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final, final

from servicekit import one_line

from ..engine import EventLevel, Invocation, LinkerInstanceBuilder, host_function
from ._unit import Capability, CapabilityBase, Hooks, interface_name

__all__ = ["DEFAULT_MAX_LOG_EVENTS", "GUEST_LOGGER", "LoggingCapability", "configure", "defaults"]

DEFAULT_MAX_LOG_EVENTS: Final = 1000
"""Guest log calls per invocation that are forwarded; later ones are counted and dropped."""

GUEST_LOGGER: Final = "runner_trio.guest"

LOG_GRANT: Final = "cap:log.emit"
"""Always granted (so :attr:`LoggingCapability.grant` is None)."""

_LEVELS: Final[dict[str, tuple[EventLevel, int]]] = {
    "log-info": ("info", logging.INFO),
    "log-warn": ("warn", logging.WARNING),
    "log-error": ("error", logging.ERROR),
}

logger = logging.getLogger(GUEST_LOGGER)


def configure(settings: object, hooks: Hooks) -> tuple[Capability, ...]:
    """No setting yet: the cap is :data:`DEFAULT_MAX_LOG_EVENTS`."""
    return (LoggingCapability(),)


def defaults() -> tuple[Capability, ...]:
    """The capability as a Linker has it when nothing is configured."""
    return (LoggingCapability(),)


@final
class LoggingCapability(CapabilityBase):
    """``log-info``, ``log-warn``, ``log-error`` (message: string)."""

    name = "logging"
    grant: str | None = None

    def __init__(self, *, max_events: int = DEFAULT_MAX_LOG_EVENTS) -> None:
        self._max_events = max_events

    def link(self, root: LinkerInstanceBuilder) -> None:
        with root.add_instance(interface_name(self.name)) as instance:
            for func_name, (level, stdlib_level) in _LEVELS.items():
                instance.add_func(func_name, host_function(self._logger_for(level, stdlib_level)))

    def _logger_for(self, level: EventLevel, stdlib_level: int) -> Callable[[Invocation, str], None]:
        def log(invocation: Invocation, message: str) -> None:
            self.log(invocation, level, stdlib_level, message)

        log.__qualname__ = f"LoggingCapability.log_{level}"
        return log

    def log(self, invocation: Invocation, level: EventLevel, stdlib_level: int, message: str) -> None:
        """Forward one guest log line (or count it as dropped past the per-invocation cap)."""
        if invocation.counters.add("log_events") > self._max_events:
            invocation.counters.add("log_events_dropped")
            return
        invocation.emit(level, "log", message)
        context = invocation.context
        if logger.isEnabledFor(stdlib_level):
            logger.log(
                stdlib_level,
                "guest: %s",
                one_line(message),  # a guest cannot start a line of its own in the runner's log
                extra={
                    "source": "guest",
                    "tenant_id": context.tenant_id,
                    "extension_id": context.extension_id,
                    "request_id": context.request_id,
                },
            )
