"""Strict JSON body validation with per-field errors.

Typical use::

    fields = Fields(await read_json(request))
    name = fields.string("name", required=True, max_len=200)
    roles = fields.string_list("roles", choices=ROLES)
    fields.finish()          # raises InvalidRequest({"name": "...", "extra": "unknown field"}) if anything is off

Every problem is collected before raising, so a client sees all its mistakes at once. Messages describe the
rule, never the value (values may be secrets). Handlers declare their bodies as typed models (:mod:`._rules`,
:mod:`._bodies`), which read through this class.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection
from datetime import datetime
from typing import Final, Literal, overload

from quart import Request

from contract import SAFE_ID_PATTERN

from ._errors import InvalidRequest, PayloadTooLarge

DEFAULT_MAX_JSON_BYTES: Final = 1024 * 1024
DEFAULT_MAX_TEXT: Final = 256
DEFAULT_MAX_ITEMS: Final = 256

ID_PATTERN: Final = SAFE_ID_PATTERN  # the ids the gateway issues: no ":" or "@" (see contract)
ID_HINT: Final = "must be 1-128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit"


async def read_json(request: Request, *, max_bytes: int = DEFAULT_MAX_JSON_BYTES) -> object:
    """Read a JSON request body of at most ``max_bytes``; an empty body reads as ``{}``.

    Raises:
        PayloadTooLarge: the body is larger than ``max_bytes``.
        InvalidRequest: the body is not JSON.
    """
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(max_bytes)
    raw = await request.get_data(cache=False, as_text=False, parse_form_data=False)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(max_bytes)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest({"$": "body must be a JSON object"}) from None


class Fields:
    """Reads the fields of one JSON object, recording problems instead of raising at the first one."""

    def __init__(self, data: object, *, prefix: str = "") -> None:
        self._prefix = prefix
        self.errors: dict[str, str] = {}
        if isinstance(data, dict):
            self._data: dict[str, object] = data
        else:
            self._data = {}
            self.errors[prefix or "$"] = "must be a JSON object"
        self._seen: set[str] = set()

    def _path(self, key: str) -> str:
        return f"{self._prefix}.{key}" if self._prefix else key

    def _take(self, key: str, required: bool) -> object | None:
        self._seen.add(key)
        value = self._data.get(key)
        if value is None and required:
            self.errors[self._path(key)] = "is required"
        return value

    @overload
    def string(self, key: str, *, required: Literal[True], max_len: int = ...,
               pattern: re.Pattern[str] | None = ..., hint: str = ...) -> str: ...

    @overload
    def string(self, key: str, *, required: bool = ..., max_len: int = ...,
               pattern: re.Pattern[str] | None = ..., hint: str = ...) -> str | None: ...

    def string(self, key: str, *, required: bool = False, max_len: int = DEFAULT_MAX_TEXT,
               pattern: re.Pattern[str] | None = None, hint: str = "has an invalid format") -> str | None:
        value = self._take(key, required)
        if value is None:
            return "" if required else None
        if not isinstance(value, str):
            self.errors[self._path(key)] = "must be a string"
        elif not value.strip():
            self.errors[self._path(key)] = "must not be empty"
        elif len(value) > max_len:
            self.errors[self._path(key)] = f"must be at most {max_len} characters"
        elif pattern is not None and not pattern.fullmatch(value):
            self.errors[self._path(key)] = hint
        else:
            return value
        return ""

    def boolean(self, key: str) -> bool | None:
        value = self._take(key, False)
        if value is None or isinstance(value, bool):
            return value
        self.errors[self._path(key)] = "must be true or false"
        return None

    def integer(self, key: str, *, low: int, high: int) -> int | None:
        value = self._take(key, False)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.errors[self._path(key)] = f"must be an integer in {low}..{high}"
            return None
        return value

    def number(self, key: str, *, low: float, high: float, above_low: bool = False,
               required: bool = False) -> float | None:
        """A JSON number (integer or not) in ``low..high`` (``(low, high]`` with ``above_low``)."""
        value = self._take(key, required)
        if value is None:
            return 0.0 if required else None
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
        in_range = (low < number if above_low else low <= number) and number <= high  # False for NaN
        if not in_range:
            interval = f"({low:g}, {high:g}]" if above_low else f"{low:g}..{high:g}"
            self.errors[self._path(key)] = f"must be a number in {interval}"
            return None
        return number

    def nested(self, key: str, *, required: bool = False) -> Fields | None:
        """The JSON object at ``key`` as :class:`Fields` of its own (its problems named ``key.field``)."""
        value = self._take(key, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.errors[self._path(key)] = "must be a JSON object"
            return None
        return Fields(value, prefix=self._path(key))

    def timestamp(self, key: str) -> datetime | None:
        """An RFC 3339 timestamp with an offset (``2030-01-01T00:00:00Z``)."""
        value = self._take(key, False)
        if value is None:
            return None
        parsed: datetime | None = None
        if isinstance(value, str) and "T" in value.upper():
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                parsed = None
        if parsed is None or parsed.tzinfo is None:
            self.errors[self._path(key)] = "must be an RFC 3339 timestamp with an offset"
            return None
        return parsed

    @overload
    def string_list(self, key: str, *, required: Literal[True], choices: Collection[str] | None = ...,
                    max_items: int = ..., max_len: int = ...) -> list[str]: ...

    @overload
    def string_list(self, key: str, *, required: bool = ..., choices: Collection[str] | None = ...,
                    max_items: int = ..., max_len: int = ...) -> list[str] | None: ...

    def string_list(self, key: str, *, required: bool = False, choices: Collection[str] | None = None,
                    max_items: int = DEFAULT_MAX_ITEMS, max_len: int = DEFAULT_MAX_TEXT) -> list[str] | None:
        value = self._take(key, required)
        if value is None:
            return [] if required else None
        if not isinstance(value, list):
            self.errors[self._path(key)] = "must be a list of strings"
            return [] if required else None
        if len(value) > max_items:
            self.errors[self._path(key)] = f"must have at most {max_items} items"
            return [] if required else None
        out: list[str] = []
        for index, item in enumerate(value):
            where = f"{self._path(key)}[{index}]"
            if not isinstance(item, str) or not item or len(item) > max_len:
                self.errors[where] = f"must be a non-empty string of at most {max_len} characters"
            elif choices is not None and item not in choices:
                self.errors[where] = f"must be one of: {', '.join(sorted(choices))}"
            else:
                out.append(item)
        return out

    @overload
    def string_map(self, key: str, *, required: Literal[True], max_items: int = ...,
                   key_pattern: re.Pattern[str] | None = ..., max_key_len: int = ...,
                   max_value_len: int = ...) -> dict[str, str]: ...

    @overload
    def string_map(self, key: str, *, required: bool = ..., max_items: int = ...,
                   key_pattern: re.Pattern[str] | None = ..., max_key_len: int = ...,
                   max_value_len: int = ...) -> dict[str, str] | None: ...

    def string_map(self, key: str, *, required: bool = False, max_items: int = DEFAULT_MAX_ITEMS,
                   key_pattern: re.Pattern[str] | None = None, max_key_len: int = 128,
                   max_value_len: int = 8192) -> dict[str, str] | None:
        value = self._take(key, required)
        if value is None:
            return {} if required else None
        if not isinstance(value, dict):
            self.errors[self._path(key)] = "must be an object of strings"
            return {} if required else None
        if len(value) > max_items:
            self.errors[self._path(key)] = f"must have at most {max_items} entries"
            return {} if required else None
        out: dict[str, str] = {}
        for name, item in value.items():
            where = f"{self._path(key)}.{name}"
            if not name or len(name) > max_key_len or (key_pattern is not None and not key_pattern.fullmatch(name)):
                self.errors[where] = f"key must be 1-{max_key_len} characters of A-Z a-z 0-9 . _ -"
            elif not isinstance(item, str):
                self.errors[where] = "must be a string"
            elif len(item) > max_value_len:
                self.errors[where] = f"must be at most {max_value_len} characters"
            else:
                out[name] = item
        return out

    def raw(self, key: str, *, required: bool = False) -> object | None:
        """The value of ``key`` as it is (for a rule that reads nested values itself)."""
        return self._take(key, required)

    def path(self, key: str) -> str:
        """Where ``key`` is in the body, as error messages name it (``budgets[0].limit``)."""
        return self._path(key)

    def finish_into(self, errors: dict[str, str]) -> None:
        """Add the unknown fields and everything collected to ``errors`` (a nested object's problems)."""
        for key in self._data:
            if key not in self._seen:
                self.errors[self._path(key)] = "unknown field"
        errors.update(self.errors)

    def finish(self) -> None:
        """Reject unknown fields and raise everything collected.

        Raises:
            InvalidRequest: ``{"error": "invalid_request", "fields": {path: message}}``.
        """
        for key in self._data:
            if key not in self._seen:
                self.errors[self._path(key)] = "unknown field"
        if self.errors:
            raise InvalidRequest(self.errors)


def check_id(value: str, field: str) -> str:
    """Validate an identifier taken from a URL path.

    Raises:
        InvalidRequest: naming ``field``.
    """
    if not ID_PATTERN.fullmatch(value):
        raise InvalidRequest({field: ID_HINT})
    return value
