"""What a failed instantiation or guest call means, from structured signals only.

Never from text the guest controls (its stdout/stderr, its log lines, or the function names of the wasm
backtrace inside wasmtime's message), so a guest cannot dress a trap up as a timeout or a memory limit:

* ``timeout``: the runner's own epoch callback or WASI wait stopped the guest (``FailureSignals.interrupted``);
* ``memory_limit``: the runner's memory creator refused a memory past the cap (``FailureSignals.memory_refused``,
  see ``_memory.py``), or wasmtime's Store limits refused an instantiation (too many instances, memories,
  tables: wasmtime's innermost error, which carries no guest text);
* ``link``: instantiation failed on an import (wasmtime's innermost error);
* ``trap``: anything else, a guest exit (``ExitTrap``) included.

A failed component call raises ``WasmtimeError`` without a trap code (wasmtime-py exposes none for
components), so the human-readable message keeps wasmtime's innermost cause (:func:`summarize`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import wasmtime

from ._errors import GuestErrorKind

__all__ = ["FailureSignals", "classify_failure", "host_cause", "summarize"]

_INSTANTIATE_LIMIT_MARKERS: Final = (
    "exceeds memory limits",  # an initial memory above the cap (when memories are not observed)
    "resource limit exceeded",  # too many instances, memories or tables
    "exceeds table limits",
)
_LINK_MARKERS: Final = (
    "matching implementation was not found",
    "wrong type",
    "type mismatch",
    "import",
)


_BACKTRACE_HEADER: Final = "error while executing at wasm backtrace"
_CAUSE_NUMBER: Final = re.compile(r"^\d+:\s*")


def summarize(exc: BaseException) -> str:
    """wasmtime's message in one line, without the wasm backtrace: the innermost cause (``wasm trap: ...``),
    after the context line when there is one."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    head, _, causes = text.rpartition("Caused by:")
    first = head.strip().splitlines()[0].strip() if head.strip() else ""
    cause_lines = [_CAUSE_NUMBER.sub("", line.strip()) for line in causes.splitlines() if line.strip()]
    innermost = cause_lines[-1] if cause_lines else ""
    if not innermost:
        return first
    if not first or first.startswith(_BACKTRACE_HEADER):
        return innermost
    return f"{first}: {innermost}"


@dataclass(frozen=True, slots=True)
class FailureSignals:
    """What the host itself observed about a failed guest call.

    Attributes:
        interrupted: the runner stopped the guest (deadline, cancellation) from its epoch callback or a WASI
            wait.
        memory_refused: the runner's memory creator refused a memory creation or growth past the cap.
    """

    interrupted: bool = False
    memory_refused: bool = False


def host_cause(exc: BaseException) -> str:
    """The part of wasmtime's message no guest wrote, lower-cased.

    Without a wasm backtrace no guest code ran: the whole message is wasmtime's (import and export names
    in it follow the component-model name grammar: no spaces). With one, only the last line after the last
    ``Caused by:``: the backtrace (whose function names come from the guest's name section and may hold
    any text, newlines included) always precedes the causes, so the last line is wasmtime's own.
    """
    text = str(exc)
    if _BACKTRACE_HEADER not in text:
        return text.strip().lower()
    _, found, causes = text.rpartition("Caused by:")
    lines = [line.strip() for line in causes.splitlines() if line.strip()] if found else []
    return _CAUSE_NUMBER.sub("", lines[-1]).lower() if lines else ""


def classify_failure(
    exc: BaseException, *, phase: str, signals: FailureSignals | None = None
) -> tuple[GuestErrorKind, str]:
    """``(kind, message)`` for a ``WasmtimeError`` raised while instantiating (``phase="instantiate"``) or
    calling the guest (``phase="call"``), given what the host observed (``signals``)."""
    seen = signals if signals is not None else FailureSignals()
    message = summarize(exc)
    if isinstance(exc, wasmtime.ExitTrap):
        return "trap", f"guest exited with status {exc.code}"
    if seen.interrupted:
        return "timeout", message
    if seen.memory_refused:
        return "memory_limit", message
    if phase == "instantiate":
        cause = host_cause(exc)
        if any(marker in cause for marker in _INSTANTIATE_LIMIT_MARKERS):
            return "memory_limit", message
        if any(marker in cause for marker in _LINK_MARKERS):
            return "link", message
    return "trap", message
