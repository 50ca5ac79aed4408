"""Secret values never reach a journal entry: every occurrence in a tagged JSON value becomes a marker.

The runner knows which secrets an invocation read (name and value); before an entry is submitted it passes the
call arguments and results, the output and the response through ``redact_secrets``. Occurrences are replaced,
not whole values: a guest that sends ``"Bearer <token>"`` is recorded as ``"Bearer «secret:TOKEN»"``, and on
replay ``secrets.get("TOKEN")`` answers ``«secret:TOKEN»``, so the replayed call carries the very same
argument and the replay stays identical.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["SECRET_MARKER", "redact_secrets", "secret_marker"]

SECRET_MARKER: Final = "«secret:{name}»"  # noqa: S105 (a template, not a password)
"""What stands for a secret value in an entry, and what ``secrets.get(name)`` answers on replay."""

# Tags of the journal's value encoding (docs/journal.md, "Values") whose first field is not data.
_NAME_TAGS: Final = frozenset({"$res", "$trap"})


def secret_marker(name: str) -> str:
    """``«secret:NAME»``."""
    return SECRET_MARKER.format(name=name)


class _Redactor:
    def __init__(self, secrets: Mapping[str, str]) -> None:
        # Longest values first: a secret that contains another is replaced whole.
        pairs = sorted(((value, name) for name, value in secrets.items() if value), key=lambda p: -len(p[0]))
        self._text = [(value, secret_marker(name)) for value, name in pairs]
        self._bytes = [(value.encode("utf-8"), marker.encode("utf-8")) for value, marker in self._text]

    def text(self, value: str) -> str:
        for secret, marker in self._text:
            if secret in value:
                value = value.replace(secret, marker)
        return value

    def raw(self, value: bytes) -> bytes:
        for secret, marker in self._bytes:
            if secret in value:
                value = value.replace(secret, marker)
        return value

    def value(self, value: Any) -> Any:
        # Exact type checks first: entries are plain JSON, and the ABC checks dominate a walk otherwise.
        kind = type(value)
        if kind is str:
            return self.text(value)
        if kind is dict:
            return self.mapping(value)
        if kind is list:
            return [self.value(item) for item in value]
        if kind is int or kind is float or kind is bool or value is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        if isinstance(value, bytes | bytearray | memoryview):
            return self.raw(bytes(value))
        if isinstance(value, Mapping):
            return self.mapping(value)
        return value

    def base64_text(self, encoded: str) -> str:
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return self.text(encoded)
        redacted = self.raw(raw)
        return encoded if redacted == raw else base64.b64encode(redacted).decode("ascii")

    def mapping(self, value: Mapping[Any, Any]) -> Any:
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag == "$b" and type(inner) is str:
                return {"$b": self.base64_text(inner)}
            if tag in _NAME_TAGS:
                return dict(value)
            if tag == "$r" and isinstance(inner, Mapping):
                return {"$r": {field: self.value(item) for field, item in inner.items()}}
        elif len(value) == 2 and "$v" in value and "p" in value:
            return {"$v": value["$v"], "p": self.value(value["p"])}
        out = {}
        for key, item in value.items():
            if type(key) is str:
                if key.endswith("_b64") and type(item) is str:
                    out[self.text(key)] = self.base64_text(item)
                    continue
                key = self.text(key)
            out[key] = self.value(item)
        return out


def redact_secrets(value: Any, secrets: Mapping[str, str]) -> Any:
    """A copy of ``value`` (JSON, or the journal's tagged JSON) with every occurrence of a secret value replaced
    by ``«secret:NAME»``: in strings, in object keys, in ``{"$b": base64}`` bytes and in the base64 text of any
    field named ``*_b64`` (``body_b64`` of a request or result: decoded, replaced as UTF-8, re-encoded), and in
    raw ``bytes``. Tag names, record field names and variant case names are left alone. Empty secret values are
    ignored (they would match everywhere). A secret the guest transformed itself (base64 in a Basic header, a
    hash, reversed) is not recognised: only the value as read.

    Args:
        value: what to redact (an entry document, a call's arguments, the output list, ...).
        secrets: secret name -> value, as read by the invocation.
    """
    if not any(secrets.values()):
        return value
    return _Redactor(secrets).value(value)
