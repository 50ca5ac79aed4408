"""What a failed instantiation or guest call means, from wasmtime's message and the guest's stderr.

A failed component call raises ``WasmtimeError`` without a trap code, so the message is all there is.
A memory cap shows in three ways: an initial memory above the cap fails instantiation; a ``memory.grow``
past it returns -1 in the guest, which then fails in its own words (Rust: "memory allocation of N bytes
failed", Python: ``MemoryError``, JavaScript: "out of memory") before trapping; or the canonical ABI cannot
allocate room for the arguments (``realloc``). No hook in wasmtime-py tells the host that a grow was
refused, so the last two are recognised from the guest's stderr and the trap message.
"""

from __future__ import annotations

import re
from typing import Final

import wasmtime

from ._errors import GuestErrorKind

__all__ = ["classify_failure", "summarize"]

_TIMEOUT_MARKERS: Final = ("wasm trap: interrupt", "all fuel consumed")
_INSTANTIATE_LIMIT_MARKERS: Final = (
    "exceeds memory limits",  # an initial memory above the cap
    "resource limit exceeded",  # too many instances, memories or tables
    "exceeds table limits",
)
_MEMORY_MARKERS: Final = (
    "memory allocation of",
    "memoryerror",
    "out of memory",
    "realloc return: beyond end of memory",
    "failed to grow memory",
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
    head, _, causes = text.partition("Caused by:")
    first = head.strip().splitlines()[0].strip() if head.strip() else ""
    cause_lines = [_CAUSE_NUMBER.sub("", line.strip()) for line in causes.splitlines() if line.strip()]
    innermost = cause_lines[-1] if cause_lines else ""
    if not innermost:
        return first
    if not first or first.startswith(_BACKTRACE_HEADER):
        return innermost
    return f"{first}: {innermost}"


def classify_failure(exc: BaseException, *, phase: str, stderr_tail: str = "") -> tuple[GuestErrorKind, str]:
    """``(kind, message)`` for a ``WasmtimeError`` raised while instantiating (``phase="instantiate"``) or
    calling the guest (``phase="call"``)."""
    if isinstance(exc, wasmtime.ExitTrap):
        return "trap", f"guest exited with status {exc.code}"
    text = str(exc).lower()
    message = summarize(exc)
    if any(marker in text for marker in _TIMEOUT_MARKERS):
        return "timeout", message
    if phase == "instantiate":
        if any(marker in text for marker in _INSTANTIATE_LIMIT_MARKERS):
            return "memory_limit", message
        if any(marker in text for marker in _LINK_MARKERS):
            return "link", message
    tail = stderr_tail.lower()
    if any(marker in text or marker in tail for marker in _MEMORY_MARKERS):
        return "memory_limit", message
    return "trap", message
