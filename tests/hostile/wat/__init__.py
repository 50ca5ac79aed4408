"""The hostile components, hand-written in the component text format like ``tests/guests/wat``.

``load_hostile(name)`` returns the binary of ``<name>.wat`` from this directory; its ``;; @include <file>``
lines name a fragment of this directory (``_storage.wat``) or a shared one of ``tests/guests/wat`` (the
``alga:extension/types`` import, the memory/allocator runtime, WASI output).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Final

import wasmtime

from tests.guests.wat import WAT_DIR as SHARED_DIR

__all__ = ["HOSTILE_DIR", "hostile_names", "load_hostile"]

HOSTILE_DIR: Final = Path(__file__).resolve().parent
_INCLUDE: Final = re.compile(r"^\s*;;\s*@include\s+(\S+)\s*$", re.MULTILINE)


def _fragment(name: str) -> str:
    local = HOSTILE_DIR / name
    return (local if local.exists() else SHARED_DIR / name).read_text(encoding="utf-8")


@functools.cache
def load_hostile(name: str) -> bytes:
    """The component binary of ``<name>.wat`` (includes expanded from ``tests/guests/wat``)."""
    text = (HOSTILE_DIR / f"{name}.wat").read_text(encoding="utf-8")
    text = _INCLUDE.sub(lambda match: _fragment(match.group(1)), text)
    return bytes(wasmtime.wat2wasm(text))


def hostile_names() -> list[str]:
    """Every hostile component of this directory (``_*.wat`` are fragments)."""
    return sorted(path.stem for path in HOSTILE_DIR.glob("*.wat") if not path.name.startswith("_"))
