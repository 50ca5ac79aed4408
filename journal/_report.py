"""What a replay reports: a verdict, the first divergence among host calls, and the response diff.

The report travels runner -> gateway -> extctl as JSON (``to_json``/``from_json``), and the gateway keeps it
in ``upgrade_checks.report_json``, so its shape is versioned with the journal format.
"""

from __future__ import annotations

import base64
import binascii
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from ._errors import ReportInvalid

__all__ = ["IGNORED_RESULT_FIELDS", "VERDICTS", "Divergence", "ReplayReport", "diff_responses"]

VERDICTS: Final = ("identical", "response_differs", "calls_differ", "new_failure")
"""``identical``: same host calls and the same response byte for byte; ``response_differs``: same host calls,
another response; ``calls_differ``: the guest made another host call (or another argument) than recorded;
``new_failure``: the replay failed (trap, timeout, …) where the recording did not."""

IGNORED_RESULT_FIELDS: Final = frozenset({"journal_entry", "usage"})
"""Result fields that differ between any two runs by nature and are left out of the response diff."""

_BODY_LINE_WIDTH: Final = 76


def _body_lines(doc: Mapping[str, Any]) -> list[str]:
    encoded = doc.get("body_b64")
    if encoded is None:
        return ["body: null"]
    if not isinstance(encoded, str):
        return [f"body_b64: {encoded!r}"]
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return [f"body_b64 (not base64): {encoded}"]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return [f"body ({len(raw)} bytes, base64):"] + [
            encoded[i : i + _BODY_LINE_WIDTH] for i in range(0, len(encoded), _BODY_LINE_WIDTH)
        ]
    # split("\n") rather than splitlines(): a trailing newline is a difference too.
    return [f"body ({len(raw)} bytes):", *text.split("\n")]


def _result_lines(doc: Mapping[str, Any]) -> list[str]:
    lines = [f"status: {doc.get('status')}", f"error: {orjson.dumps(doc.get('error')).decode()}"]
    headers = doc.get("headers") or {}
    if isinstance(headers, Mapping):
        lines += [f"header {name}: {headers[name]}" for name in sorted(headers, key=lambda n: (str(n).lower(), n))]
    else:
        lines.append(f"headers: {headers!r}")
    known = {"status", "error", "headers", "body_b64", *IGNORED_RESULT_FIELDS}
    for name in sorted(k for k in doc if k not in known):
        lines.append(f"{name}: {orjson.dumps(doc[name], option=orjson.OPT_SORT_KEYS).decode()}")
    return lines + _body_lines(doc)


def diff_responses(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """Unified-diff lines (``recorded`` vs ``replayed``) of two ``encode_execute_result``-shaped dicts.

    Status, error, headers (sorted by name) and any other field are compared as lines; the body is decoded and
    compared line by line when it is UTF-8, else as its base64 text. ``journal_entry`` and ``usage`` are left
    out (they differ between any two runs). An empty list means the responses are identical.
    """
    return list(
        difflib.unified_diff(
            _result_lines(expected), _result_lines(actual), fromfile="recorded", tofile="replayed", lineterm=""
        )
    )


def _optional_dict(value: Any, what: str) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    raise ReportInvalid(f"{what} must be an object or null")


def _non_negative_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReportInvalid(f"{what} must be a non-negative integer")
    return value


@dataclass(frozen=True)
class Divergence:
    """The first host call where the replay left the recording.

    Attributes:
        index: the position in the recorded call list (``calls[index]``; equal to its length when the guest made
            a call past the end of the recording).
        expected: the recorded call (``{"i", "fn", "args", "result", ...}``), or ``None`` past the recording.
        actual: what the guest called (``{"fn", "args"}``), or ``None`` when it stopped calling (ended early).
        reason: one line for people, e.g. ``"called wasi:random/random#get-random-u64, recorded
            alga:extension/storage#get"``.
    """

    index: int
    expected: dict[str, Any] | None
    actual: dict[str, Any] | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "expected": self.expected, "actual": self.actual, "reason": self.reason}

    @classmethod
    def from_json(cls, doc: Any) -> Divergence:
        """Raises: ReportInvalid: not shaped as ``to_json`` writes it."""
        if not isinstance(doc, dict):
            raise ReportInvalid("divergence must be an object or null")
        reason = doc.get("reason")
        if not isinstance(reason, str):
            raise ReportInvalid("divergence.reason must be a string")
        return cls(
            index=_non_negative_int(doc.get("index"), "divergence.index"),
            expected=_optional_dict(doc.get("expected"), "divergence.expected"),
            actual=_optional_dict(doc.get("actual"), "divergence.actual"),
            reason=reason,
        )


@dataclass(frozen=True)
class ReplayReport:
    """The outcome of replaying one entry (``POST /v1/replay`` answers ``to_json()``).

    Attributes:
        verdict: one of ``VERDICTS``.
        divergence: the first differing host call (``calls_differ``; may also explain a ``new_failure``).
        response_diff: ``diff_responses(recorded, replayed)``; empty when the responses are identical.
        calls_replayed: host calls answered from the journal before the replay ended or diverged.
        entry_id: the replayed entry, when the replayer knows it.
        content_hash: the bundle replayed (``sha256:…``), when the replayer knows it.
    """

    verdict: str
    divergence: Divergence | None = None
    response_diff: list[str] = field(default_factory=list)
    calls_replayed: int = 0
    entry_id: str | None = None
    content_hash: str | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ReportInvalid(f"verdict must be one of {', '.join(VERDICTS)}, got {str(self.verdict)[:40]!r}")

    @property
    def identical(self) -> bool:
        """Whether the replay matched the recording exactly."""
        return self.verdict == "identical"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``orjson.dumps`` it)."""
        return {
            "verdict": self.verdict,
            "divergence": None if self.divergence is None else self.divergence.to_json(),
            "response_diff": list(self.response_diff),
            "calls_replayed": self.calls_replayed,
            "entry_id": self.entry_id,
            "content_hash": self.content_hash,
        }

    @classmethod
    def from_json(cls, doc: Any) -> ReplayReport:
        """Read what ``to_json`` wrote (a dict, or its JSON text or bytes); unknown fields are ignored.

        Raises:
            ReportInvalid: not JSON, or a field is missing or has the wrong type.
        """
        if isinstance(doc, str | bytes | bytearray | memoryview):
            try:
                doc = orjson.loads(doc)
            except orjson.JSONDecodeError:
                raise ReportInvalid("replay report is not JSON") from None
        if not isinstance(doc, dict):
            raise ReportInvalid("replay report must be an object")
        verdict = doc.get("verdict")
        if not isinstance(verdict, str) or verdict not in VERDICTS:
            raise ReportInvalid(f"verdict must be one of {', '.join(VERDICTS)}")
        raw_divergence = doc.get("divergence")
        diff = doc.get("response_diff", [])
        if not isinstance(diff, list) or not all(isinstance(line, str) for line in diff):
            raise ReportInvalid("response_diff must be a list of strings")
        optional = {}
        for name in ("entry_id", "content_hash"):
            value = doc.get(name)
            if value is not None and not isinstance(value, str):
                raise ReportInvalid(f"{name} must be a string or null")
            optional[name] = value
        return cls(
            verdict=verdict,
            divergence=None if raw_divergence is None else Divergence.from_json(raw_divergence),
            response_diff=diff,
            calls_replayed=_non_negative_int(doc.get("calls_replayed", 0), "calls_replayed"),
            **optional,
        )
