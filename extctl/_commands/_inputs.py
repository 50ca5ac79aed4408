"""Reading what operators type: string maps (``--json`` / ``--file``), ``k=v`` pairs, RFC 3339 timestamps.

A malformed argument is a usage error (exit 2); a file whose content is wrong is a rejection (exit 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Final

from .._errors import CommandFailed, UsageError

__all__ = [
    "DEFAULT_MAX_INPUT_BYTES",
    "add_map_arguments",
    "parse_pairs",
    "parse_timestamp",
    "read_limited",
    "read_string_map",
]

DEFAULT_MAX_INPUT_BYTES: Final = 4 * 1024 * 1024
"""Largest ``--file``/``--data-file`` read (the gateway refuses far smaller secret maps anyway)."""


def add_map_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """A required choice of ``--json '{"k": "v"}'`` or ``--file F`` (``-`` reads stdin)."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--json", metavar="JSON", help=f'the {what} as a JSON object of strings, e.g. \'{{"k":"v"}}\'')
    group.add_argument(
        "--file", metavar="FILE",
        help=f"read the {what} (a JSON object of strings) from FILE; '-' reads stdin and keeps values out of ps",
    )


def read_limited(name: str, *, max_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> bytes:
    """The bytes of file ``name`` (``-`` is stdin), refusing more than ``max_bytes``."""
    if name == "-":
        data = sys.stdin.buffer.read(max_bytes + 1)
    else:
        with open(Path(name), "rb") as handle:
            data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise CommandFailed(f"{'stdin' if name == '-' else name} is larger than {max_bytes} bytes", code="too_large")
    return data


def _string_map(text: str, source: str) -> dict[str, str] | str:
    """The map, or a description of what is wrong with ``text``."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        return f"{source} is not JSON: {exc.args[0] if exc.args else exc}"
    if not isinstance(value, dict):
        return f"{source} must be a JSON object"
    bad = sorted(key for key, item in value.items() if not isinstance(item, str))
    if bad:
        # Names only: the values may be secrets.
        return f"{source}: the values of {', '.join(bad[:5])} are not strings"
    return value


def read_string_map(args: argparse.Namespace, *, max_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> dict[str, str]:
    """The ``{name: string}`` map of ``--json`` or ``--file`` (see :func:`add_map_arguments`)."""
    if args.json is not None:
        found = _string_map(args.json, "--json")
        if isinstance(found, str):
            raise UsageError(found)
        return found
    data = read_limited(args.file, max_bytes=max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandFailed(f"{args.file} is not UTF-8", code="invalid_input") from None
    found = _string_map(text, "stdin" if args.file == "-" else args.file)
    if isinstance(found, str):
        raise CommandFailed(found, code="invalid_input")
    return found


def parse_pairs(items: list[str], flag: str) -> dict[str, str]:
    """``["k=v", …]`` as a dict (later repeats win); ``v`` may contain ``=``."""
    pairs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"{flag} {item!r} is not KEY=VALUE")
        pairs[name] = value
    return pairs


def parse_timestamp(text: str, flag: str) -> datetime:
    """An RFC 3339 timestamp with an offset (``2030-01-01T00:00:00Z``)."""
    try:
        parsed = datetime.fromisoformat(text) if "T" in text.upper() else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise UsageError(f"{flag} {text!r} is not an RFC 3339 timestamp with an offset (e.g. 2030-01-01T00:00:00Z)")
    return parsed
