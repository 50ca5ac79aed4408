"""Typed request-body models: each field's rule reads it (with :class:`Fields`) and describes it (JSON Schema).

A request body is a frozen dataclass whose fields carry their rule as ``Annotated`` metadata (:class:`Text`,
:class:`Choice`, :class:`Flag`, :class:`Integer`, :class:`Timestamp`, :class:`TextList`, :class:`TextMap`,
:class:`Number`, :class:`Nested`, :class:`ModelList`).
The same rules validate a body (:func:`parse_body`) and describe it in the OpenAPI document
(:func:`body_schema`), so the two cannot drift::

    @dataclass(frozen=True, slots=True)
    class TenantCreate:
        id: Annotated[str | None, Text(max_len=128, pattern=ID_PATTERN, hint=ID_HINT)]
        name: Annotated[str, Text(required=True, max_len=200)]

    body = parse_body(TenantCreate, await read_json(request))   # raises InvalidRequest naming every problem

A handler that must look something up before answering (a version named in the body) reads the model with
:func:`read_body`, adds its own errors to the same :class:`Fields`, then calls :meth:`Fields.finish`.
"""

from __future__ import annotations

import dataclasses
import re
import types
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol, TypeVar, Union, get_args, get_origin, get_type_hints

from ._errors import InvalidRequest
from ._validation import DEFAULT_MAX_ITEMS, DEFAULT_MAX_TEXT, Fields

_Body = TypeVar("_Body")


class FieldRule(Protocol):
    """How one field of a body model is read (with :class:`Fields`) and described (as JSON Schema)."""

    @property
    def required(self) -> bool: ...

    def read(self, fields: Fields, key: str) -> object: ...

    def schema(self) -> dict[str, Any]: ...


def _anchored(pattern: re.Pattern[str]) -> str:
    # JSON Schema patterns search; the validators fullmatch.
    return f"^(?:{pattern.pattern})$"


@dataclass(frozen=True, slots=True)
class Text:
    """A non-blank string of at most ``max_len`` characters, optionally matching ``pattern`` (else ``hint``)."""

    required: bool = False
    max_len: int = DEFAULT_MAX_TEXT
    pattern: re.Pattern[str] | None = None
    hint: str = "has an invalid format"

    def read(self, fields: Fields, key: str) -> str | None:
        return fields.string(key, required=self.required, max_len=self.max_len, pattern=self.pattern, hint=self.hint)

    def schema(self) -> dict[str, Any]:
        # Without a pattern of its own, \S says what the reader checks: not blank.
        pattern = _anchored(self.pattern) if self.pattern is not None else r"\S"
        return {"type": "string", "minLength": 1, "maxLength": self.max_len, "pattern": pattern}


@dataclass(frozen=True, slots=True)
class Choice:
    """One of ``options`` (a string; the message lists them in this order)."""

    options: tuple[str, ...]
    required: bool = False

    def read(self, fields: Fields, key: str) -> str | None:
        pattern = re.compile("|".join(re.escape(option) for option in self.options))
        return fields.string(key, required=self.required, pattern=pattern,
                             hint=f"must be one of: {', '.join(self.options)}")

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.options)}


@dataclass(frozen=True, slots=True)
class Flag:
    """``true`` or ``false``."""

    @property
    def required(self) -> bool:
        return False

    def read(self, fields: Fields, key: str) -> bool | None:
        return fields.boolean(key)

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True, slots=True)
class Integer:
    """An integer in ``low..high`` (booleans are not integers here)."""

    low: int
    high: int

    @property
    def required(self) -> bool:
        return False

    def read(self, fields: Fields, key: str) -> int | None:
        return fields.integer(key, low=self.low, high=self.high)

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}


@dataclass(frozen=True, slots=True)
class Timestamp:
    """An RFC 3339 timestamp with an offset, read as an aware ``datetime``."""

    @property
    def required(self) -> bool:
        return False

    def read(self, fields: Fields, key: str) -> datetime | None:
        return fields.timestamp(key)

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}


@dataclass(frozen=True, slots=True)
class TextList:
    """A list of at most ``max_items`` non-empty strings, each one of ``choices`` when given."""

    required: bool = False
    choices: tuple[str, ...] | None = None
    max_items: int = DEFAULT_MAX_ITEMS
    max_len: int = DEFAULT_MAX_TEXT

    def read(self, fields: Fields, key: str) -> list[str] | None:
        return fields.string_list(key, required=self.required, choices=self.choices, max_items=self.max_items,
                                  max_len=self.max_len)

    def schema(self) -> dict[str, Any]:
        items: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": self.max_len}
        if self.choices is not None:
            items["enum"] = sorted(self.choices)
        return {"type": "array", "maxItems": self.max_items, "items": items}


@dataclass(frozen=True, slots=True)
class TextMap:
    """An object of at most ``max_items`` string values; names match ``key_pattern`` and ``max_key_len``."""

    required: bool = False
    max_items: int = DEFAULT_MAX_ITEMS
    key_pattern: re.Pattern[str] | None = None
    max_key_len: int = 128
    max_value_len: int = 8192

    def read(self, fields: Fields, key: str) -> dict[str, str] | None:
        return fields.string_map(key, required=self.required, max_items=self.max_items,
                                 key_pattern=self.key_pattern, max_key_len=self.max_key_len,
                                 max_value_len=self.max_value_len)

    def schema(self) -> dict[str, Any]:
        names: dict[str, Any] = {"minLength": 1, "maxLength": self.max_key_len}
        if self.key_pattern is not None:
            names["pattern"] = _anchored(self.key_pattern)
        return {"type": "object", "maxProperties": self.max_items, "propertyNames": names,
                "additionalProperties": {"type": "string", "maxLength": self.max_value_len}}


@dataclass(frozen=True, slots=True)
class Number:
    """A JSON number in ``low..high`` (``(low, high]`` with ``above_low``), read as a float."""

    low: float
    high: float
    above_low: bool = False
    required: bool = False

    def read(self, fields: Fields, key: str) -> float | None:
        return fields.number(key, low=self.low, high=self.high, above_low=self.above_low, required=self.required)

    def schema(self) -> dict[str, Any]:
        low: dict[str, Any] = {"exclusiveMinimum": self.low} if self.above_low else {"minimum": self.low}
        return {"type": "number", **low, "maximum": self.high}


@dataclass(frozen=True, slots=True)
class Nested:
    """A JSON object read as the body model ``model`` (its problems named ``key.field``)."""

    model: type
    required: bool = False

    def read(self, fields: Fields, key: str) -> object:
        inner = fields.nested(key, required=self.required)
        if inner is None:
            return None
        value: object = read_body(inner, self.model)
        try:
            inner.finish()
        except InvalidRequest as exc:
            fields.errors.update(exc.fields)
        return value

    def schema(self) -> dict[str, Any]:
        return body_schema(self.model)


@dataclass(frozen=True, slots=True)
class ModelList:
    """A list of at most ``max_items`` JSON objects, each read as the body model ``model`` (problems are named
    ``key[i].field``)."""

    model: type
    required: bool = False
    max_items: int = DEFAULT_MAX_ITEMS

    def read(self, fields: Fields, key: str) -> list[Any] | None:
        value = fields.raw(key, required=self.required)
        if value is None:
            return [] if self.required else None
        where = fields.path(key)
        if not isinstance(value, list):
            fields.errors[where] = "must be a list of objects"
            return []
        if len(value) > self.max_items:
            fields.errors[where] = f"must have at most {self.max_items} items"
            return []
        out = []
        for index, item in enumerate(value):
            inner = Fields(item, prefix=f"{where}[{index}]")
            body: Any = read_body(inner, self.model)
            inner.finish_into(fields.errors)
            out.append(body)
        return out

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "maxItems": self.max_items, "items": body_schema(self.model)}


def body_fields(model: type) -> tuple[tuple[str, FieldRule], ...]:
    """The ``(name, rule)`` of each field of the body model ``model``, in declaration order.

    Raises:
        TypeError: ``model`` is not a dataclass, a field has no rule, or a field's type disagrees with its rule
            (a required field must not admit ``None``; an optional one must).
    """
    cached = _FIELDS_CACHE.get(model)
    if cached is None:
        cached = _FIELDS_CACHE[model] = _read_rules(model)
    return cached


def _read_rules(model: type) -> tuple[tuple[str, FieldRule], ...]:
    if not dataclasses.is_dataclass(model):
        raise TypeError(f"{model.__name__} is not a dataclass")
    hints = get_type_hints(model, include_extras=True)
    out: list[tuple[str, FieldRule]] = []
    for field in dataclasses.fields(model):
        hint = hints[field.name]
        rules = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, _RULES)]
        if len(rules) != 1:
            raise TypeError(f"{model.__name__}.{field.name} needs exactly one field rule in Annotated[...]")
        rule = rules[0]
        base = get_args(hint)[0]
        optional = get_origin(base) in (Union, types.UnionType) and type(None) in get_args(base)
        if optional == rule.required:
            expected = "must not admit None" if rule.required else "must admit None"
            raise TypeError(f"{model.__name__}.{field.name}: a {'required' if rule.required else 'optional'} "
                            f"field {expected}")
        out.append((field.name, rule))
    return tuple(out)


_RULES: Final = (Text, Choice, Flag, Integer, Timestamp, TextList, TextMap, Number, Nested, ModelList)
# Models are module-level classes, a handful per process: the cache never grows past them.
_FIELDS_CACHE: Final[dict[type, tuple[tuple[str, FieldRule], ...]]] = {}


def read_body(fields: Fields, model: type[_Body]) -> _Body:
    """Read every field of the body model ``model`` from ``fields``; fields with problems hold placeholders."""
    return model(**{name: rule.read(fields, name) for name, rule in body_fields(model)})


def parse_body(model: type[_Body], data: object) -> _Body:
    """Validate the JSON value ``data`` against ``model`` and return it as that model.

    Raises:
        InvalidRequest: ``{"error": "invalid_request", "fields": {path: message}}`` naming every problem,
            unknown fields included.
    """
    fields = Fields(data)
    body = read_body(fields, model)
    fields.finish()
    return body


def body_schema(model: type) -> dict[str, Any]:
    """The JSON Schema (OpenAPI 3.1) of the body model ``model``: closed, with its required fields."""
    rules = body_fields(model)
    properties = {name: rule.schema() if rule.required else _nullable(rule.schema()) for name, rule in rules}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = [name for name, rule in rules if rule.required]
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    if model.__doc__:
        # The first docstring line, with reST literals as the Markdown that OpenAPI renders.
        schema["description"] = model.__doc__.strip().splitlines()[0].replace("``", "`")
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    # The reader takes an optional field's JSON null as absent.
    out = {**schema, "type": [schema["type"], "null"]}
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out
