"""The debug-stream layout: where a runner writes an invocation's events and what each entry holds.

The reference runner's layout, field for field and in this order::

    XADD <prefix><tenant>:<extension> MAXLEN ~ <maxlen> * ts <unix ms> level <level> stream <stream>
         [tenant <id>] [extension <id>] [install <id>] [request <id>] [version <id>] [content_hash <h>]
         message <text> truncated <0|1>

Optional fields appear only when set. Ids are lower-cased in the key, not in the fields. A tail sends each
entry to its clients as the reference gateway does, as a JSON event with camelCase names (:data:`JSON_NAMES`).

Only ids without ``:`` name a stream that can be read (:func:`is_stream_key_part`). The runner accepts ``:`` in
tenant and extension ids alike, so with one in either part tenant ``a`` + extension ``b:c`` and tenant ``a:b`` +
extension ``c`` would share ``<prefix>a:b:c``: a tail of the first would read the second tenant's events. Such an
id still runs; its stream is written (as the reference writes it) but no tail opens it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from ._errors import InvalidStreamKey
from ._grammar import is_id

__all__ = [
    "CONTEXT_FIELDS",
    "DEFAULT_STREAM_PREFIX",
    "JSON_NAMES",
    "KEY_SEPARATOR",
    "LEVELS",
    "STREAMS",
    "Level",
    "Stream",
    "entry_fields",
    "entry_to_event",
    "is_stream_key_part",
    "parse_stream_key",
    "stream_key",
]

Level = Literal["trace", "debug", "info", "warn", "error"]
Stream = Literal["stdout", "stderr", "log"]

LEVELS: Final[tuple[Level, ...]] = ("trace", "debug", "info", "warn", "error")
"""Levels from least to most severe."""
STREAMS: Final[tuple[Stream, ...]] = ("stdout", "stderr", "log")

DEFAULT_STREAM_PREFIX: Final = "ext-debug:"
KEY_SEPARATOR: Final = ":"

CONTEXT_FIELDS: Final = ("tenant", "extension", "install", "request", "version", "content_hash")
"""The optional fields of an entry, in the layout's order."""
JSON_NAMES: Final[Mapping[str, str]] = {
    "ts": "ts",
    "level": "level",
    "stream": "stream",
    "tenant": "tenantId",
    "extension": "extensionId",
    "install": "installId",
    "request": "requestId",
    "version": "versionId",
    "content_hash": "contentHash",
    "message": "message",
    "truncated": "truncated",
}
"""Entry field -> the JSON event's name for it."""


def stream_key(prefix: str, tenant: str, extension: str) -> str:
    """The Redis stream of (tenant, extension): ``<prefix><tenant>:<extension>``, ids lower-cased."""
    return f"{prefix}{tenant.lower()}{KEY_SEPARATOR}{extension.lower()}"


def parse_stream_key(prefix: str, key: str) -> tuple[str, str]:
    """``(tenant, extension)`` of a stream key (lower case, as the key holds them).

    Raises:
        InvalidStreamKey: ``key`` does not start with ``prefix``, or is not two stream key parts (see
            :func:`is_stream_key_part`) joined by ``:``.
    """
    if not key.startswith(prefix):
        raise InvalidStreamKey(f"stream key {key[:200]!r} does not start with {prefix!r}")
    tenant, sep, extension = key[len(prefix):].partition(KEY_SEPARATOR)
    if not sep or not is_stream_key_part(tenant) or not is_stream_key_part(extension):
        raise InvalidStreamKey(f"stream key {key[:200]!r} is not {prefix}<tenant>:<extension>")
    return tenant, extension


def is_stream_key_part(value: str) -> bool:
    """Whether ``value`` (a tenant or extension id) names a stream without ambiguity: an id holding no ``:``.

    Compared lower-cased, as the key holds it.
    """
    return KEY_SEPARATOR not in value and is_id(value.lower())


def entry_fields(
    *,
    ts: int,
    level: str,
    stream: str,
    message: str,
    truncated: bool,
    context: Mapping[str, str | None],
) -> list[str]:
    """The field/value list of a stream entry, flattened, in the layout's order.

    Args:
        context: values of :data:`CONTEXT_FIELDS`; unset (``None`` or empty) ones are left out.
    """
    out = ["ts", str(ts), "level", level, "stream", stream]
    for name in CONTEXT_FIELDS:
        value = context.get(name)
        if value:
            out += (name, value)
    out += ("message", message, "truncated", "1" if truncated else "0")
    return out


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def entry_to_event(entry_id: bytes | str, fields: Mapping[bytes | str, bytes | str]) -> dict[str, Any]:
    """One stream entry as the JSON event a tail's clients receive.

    ``ts`` stays the string Redis holds (Unix milliseconds), optional ids are left out when the entry has none,
    ``truncated`` is a boolean; ``id`` (the stream entry id) is ours, and clients that do not know it ignore it.
    An entry missing ``level`` or ``stream`` reads as ``info`` / ``log``.
    """
    raw = {_text(name): _text(value) for name, value in fields.items()}
    event: dict[str, Any] = {
        "id": _text(entry_id),
        "ts": raw.get("ts", ""),
        "level": raw.get("level") or "info",
        "stream": raw.get("stream") or "log",
    }
    for name in CONTEXT_FIELDS:
        value = raw.get(name)
        if value:
            event[JSON_NAMES[name]] = value
    event["message"] = raw.get("message", "")
    event["truncated"] = raw.get("truncated") in ("1", "true")
    return event
