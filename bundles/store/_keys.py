"""Object keys: validation, and the layout that names a bundle's objects.

A key is a relative, ``/``-separated path whose segments use only the URL-unreserved characters
(``A-Z a-z 0-9 - . _ ~``) and never start with a dot. The narrow alphabet means a key needs no
percent-encoding anywhere (file system, URL, SigV4 canonical path), so the signer, the HTTP client and the
server can never disagree about which object is meant; the leading-dot rule rules out ``.``/``..`` and
keeps the file backend's temporary files (``.tmp-*``) out of the key space.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Final

from .._pack import is_canonical_hex

__all__ = [
    "BUNDLE_FILENAME",
    "DEFAULT_KEY_TEMPLATE",
    "ENTRY_FILENAME",
    "MANIFEST_FILENAME",
    "MAX_KEY_LENGTH",
    "SIGNATURE_FILENAME",
    "BundleLayout",
    "validate_key",
]

MAX_KEY_LENGTH: Final = 1024
"""S3's limit on an object name, in bytes; keys here are ASCII so characters equal bytes."""

DEFAULT_KEY_TEMPLATE: Final = "sha256/{hex}"
BUNDLE_FILENAME: Final = "bundle.tar.zst"
MANIFEST_FILENAME: Final = "manifest.json"
ENTRY_FILENAME: Final = "entry.wasm"
SIGNATURE_FILENAME: Final = "bundle.sig"
PRECOMPILED_DIR: Final = "precompiled"
PRECOMPILED_SUFFIX: Final = ".cwasm"

_SEGMENT = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]*")
_FIELD_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def _segment_problem(segment: str) -> str | None:
    if segment == "":
        return "has an empty segment (leading, trailing or doubled '/')"
    if segment in (".", ".."):
        return f"has a {segment!r} segment"
    if segment.startswith("."):
        return f"segment {segment!r} starts with '.'"
    if not _SEGMENT.fullmatch(segment):
        return f"segment {segment!r} has characters outside A-Z a-z 0-9 - . _ ~"
    return None


def validate_key(key: str, *, max_length: int = MAX_KEY_LENGTH) -> str:
    """Return ``key`` unchanged if it is a safe relative object key, else raise ``ValueError``.

    Args:
        key: the candidate key, e.g. ``sha256/<hex>/bundle.tar.zst``.
        max_length: the longest key accepted.

    Raises:
        ValueError: the key is empty, too long, absolute, contains a backslash, an empty, ``.`` or ``..``
            segment, a segment starting with ``.``, or a character outside the safe set. The message names
            the problem but does not echo more than a bounded prefix of a hostile key.
    """
    if not isinstance(key, str):
        raise TypeError(f"object key must be str, not {type(key).__name__}")
    shown = repr(key[:80]) + ("…" if len(key) > 80 else "")
    if not key:
        raise ValueError("object key is empty")
    if len(key) > max_length:
        raise ValueError(f"object key {shown} is longer than {max_length} characters")
    if "\\" in key:
        raise ValueError(f"object key {shown} contains a backslash")
    if key.startswith("/"):
        raise ValueError(f"object key {shown} is absolute")
    for segment in key.split("/"):
        problem = _segment_problem(segment)
        if problem is not None:
            raise ValueError(f"object key {shown} {problem}")
    return key


def _validate_segment(name: str, value: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be str, not {type(value).__name__}")
    problem = _segment_problem(value)
    if problem is not None:
        raise ValueError(f"{name} {value[:80]!r} is not a single safe key segment: {problem}")
    return value


def _template_fields(template: str) -> frozenset[str]:
    fields: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"key template {template!r} is malformed: {exc}") from None
    literal = []
    for text, name, spec, conversion in parsed:
        literal.append(text)
        if name is None:
            continue
        if spec or conversion:
            raise ValueError(f"key template {template!r}: field {{{name}}} may not have a format or conversion")
        if not _FIELD_NAME.fullmatch(name):
            raise ValueError(f"key template {template!r}: field {{{name}}} is not a plain lowercase name")
        fields.add(name)
        literal.append("x")  # stand-in so the shape check below sees a non-empty segment
    if "hex" not in fields:
        raise ValueError(f"key template {template!r} must contain {{hex}}")
    try:
        validate_key("".join(literal))
    except ValueError as exc:
        raise ValueError(f"key template {template!r} does not make safe keys: {exc}") from None
    return frozenset(fields)


@dataclass(frozen=True)
class BundleLayout:
    """Names the objects of one bundle in the store.

    ``key_template`` gives the directory of a bundle; ``{hex}`` is its content hash (sha256 of the compressed
    bundle, lowercase hex) and any other ``{name}`` field is filled from the keyword arguments of the key
    methods, e.g. ``tenants/{tenant}/extensions/{extension}/sha256/{hex}``. Each filled value must be a
    single safe segment, so a hostile tenant or extension name cannot move a key elsewhere.

    Raises:
        ValueError: at construction when the template is malformed or lacks ``{hex}``; from the key methods
            when ``hex`` is not 64 lowercase hex digits, a field is missing or unexpected, or a value is not a
            safe segment.
    """

    key_template: str = DEFAULT_KEY_TEMPLATE
    template_fields: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "template_fields", _template_fields(self.key_template))

    def prefix(self, hex: str, **ctx: str) -> str:
        """The directory key holding every object of the bundle ``hex``."""
        if not is_canonical_hex(hex):
            raise ValueError(f"content hash {str(hex)[:80]!r} is not 64 lowercase hex digits")
        wanted = self.template_fields - {"hex"}
        missing = sorted(wanted - ctx.keys())
        extra = sorted(ctx.keys() - wanted)
        if missing or extra:
            raise ValueError(
                f"key template {self.key_template!r} needs {sorted(wanted)}; missing {missing}, unexpected {extra}"
            )
        values = {name: _validate_segment(name, value) for name, value in ctx.items()}
        return validate_key(self.key_template.format(hex=hex, **values))

    def bundle_key(self, hex: str, **ctx: str) -> str:
        """Key of the compressed bundle, ``<prefix>/bundle.tar.zst``."""
        return f"{self.prefix(hex, **ctx)}/{BUNDLE_FILENAME}"

    def manifest_key(self, hex: str, **ctx: str) -> str:
        """Key of the manifest copied beside the bundle, ``<prefix>/manifest.json``."""
        return f"{self.prefix(hex, **ctx)}/{MANIFEST_FILENAME}"

    def entry_key(self, hex: str, **ctx: str) -> str:
        """Key of the component copied beside the bundle, ``<prefix>/entry.wasm``."""
        return f"{self.prefix(hex, **ctx)}/{ENTRY_FILENAME}"

    def signature_key(self, hex: str, **ctx: str) -> str:
        """Key of the detached signature, ``<prefix>/bundle.sig``."""
        return f"{self.prefix(hex, **ctx)}/{SIGNATURE_FILENAME}"

    def precompiled_key(self, hex: str, target: str, **ctx: str) -> str:
        """Key of a runner-written precompiled artifact, ``<prefix>/precompiled/<target>.cwasm``."""
        name = _validate_segment("target", target) + PRECOMPILED_SUFFIX
        return f"{self.prefix(hex, **ctx)}/{PRECOMPILED_DIR}/{name}"
