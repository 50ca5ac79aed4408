"""How both services write their log: ``text`` (one line a record) or ``json`` (one JSON object a line).

``configure_logging(fmt)`` installs one handler on the root logger. Text from outside never starts a line of
its own: in ``text`` every message and every context field is passed through :func:`one_line`; in ``json``
the whole record is one JSON document (python-json-logger), so a newline or a ``{...}`` inside a message is
only a character of a string value.

Guest-originated records carry ``source="guest"`` and the fields ``tenant_id``, ``extension_id`` and
``request_id`` (passed with ``extra=``); in ``text`` they are appended to the line as ``key=value``, so a
reader of the plain log sees whose line it is too. A guest cannot set ``source`` or any field: it only
chooses the message.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final, TextIO

from pythonjsonlogger.json import JsonFormatter

from ._logtext import one_line

__all__ = [
    "CONTEXT_FIELDS",
    "LOG_FORMATS",
    "JsonLogFormatter",
    "TextLogFormatter",
    "configure_logging",
    "log_format",
    "log_formatter",
]

LOG_FORMATS: Final = ("text", "json")
CONTEXT_FIELDS: Final = ("source", "tenant_id", "extension_id", "request_id")
"""Fields a record may carry through ``extra=``; both formats show them."""
_TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_JSON_FIELDS: Final = ("asctime", "levelname", "name", "message")


def log_format(raw: str) -> str:
    """Parser of a ``*_LOG_FORMAT`` setting: ``text`` or ``json``."""
    value = raw.strip().lower()
    if value not in LOG_FORMATS:
        raise ValueError(f"must be one of {', '.join(LOG_FORMATS)}, not {raw!r}")
    return value


class TextLogFormatter(logging.Formatter):
    """The classic line, with control characters of the message escaped and the context fields appended."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(_escaped(record))
        fields = [f"{name}={one_line(str(value), limit=256)}" for name in CONTEXT_FIELDS
                  if (value := getattr(record, name, None)) is not None]
        return f"{line} [{' '.join(fields)}]" if fields else line

    def format(self, record: logging.LogRecord) -> str:
        # logging joins the message and the (escaped) traceback with a newline: keep the record on one line.
        return super().format(record).replace("\n", "\\n")

    def formatException(self, ei: Any) -> str:
        return one_line(super().formatException(ei), limit=65536)

    def formatStack(self, stack_info: str) -> str:
        return one_line(super().formatStack(stack_info), limit=65536)


def _escaped(record: logging.LogRecord) -> logging.LogRecord:
    copy = logging.makeLogRecord(record.__dict__)
    copy.message = one_line(record.getMessage(), limit=65536)
    return copy


class JsonLogFormatter(JsonFormatter):
    """One JSON object per record: time, level, logger, message, context fields, exception text."""

    def __init__(self) -> None:
        super().__init__(
            list(_JSON_FIELDS),
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=True,  # pure ASCII lines: nothing (a lone surrogate, U+2028) can break a reader
        )


def log_formatter(fmt: str) -> logging.Formatter:
    """The formatter of ``fmt`` (``text`` or ``json``)."""
    if fmt == "json":
        return JsonLogFormatter()
    if fmt == "text":
        return TextLogFormatter()
    raise ValueError(f"unknown log format {fmt!r}")


def configure_logging(fmt: str = "text", *, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send every record to ``stream`` (default stderr) in format ``fmt``, replacing the root's handlers."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(log_formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
