"""The journal tests' hand-written component: ``clocklog.wat``, a template (see its header)."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Final

import wasmtime

from tests.guests.wat import WAT_DIR

__all__ = ["clocklog"]

HERE: Final = Path(__file__).resolve().parent
_INCLUDE: Final = re.compile(r"^\s*;;\s*@include\s+(\S+)\s*$", re.MULTILINE)


@functools.cache
def clocklog(second_fn: str = "log-info", second_arg: str = "two", *, status: int = 200, trap: bool = False) -> bytes:
    """The component that reads the wall clock, logs "one", then calls ``second_fn(second_arg)``; then answers
    ``status``, or traps (``trap``)."""
    text = (HERE / "clocklog.wat").read_text(encoding="utf-8")
    text = _INCLUDE.sub(lambda match: (WAT_DIR / match.group(1)).read_text(encoding="utf-8"), text)
    text = (text.replace("{{SECOND_FN}}", second_fn).replace("{{SECOND_ARG}}", second_arg)
            .replace("{{SECOND_LEN}}", str(len(second_arg.encode())))
            .replace("{{STATUS}}", str(status)).replace("{{TAIL}}", "unreachable" if trap else ""))
    return bytes(wasmtime.wat2wasm(text))
