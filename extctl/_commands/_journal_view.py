"""Plain-text views of the journal's answers (tables for people; ``--json`` prints the answer itself)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["format_entries", "format_replay", "format_upgrade_check", "table"]


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; ``None`` shows as ``-``."""
    cells = [[str(c) for c in header]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def _short(content_hash: object) -> str:
    text = str(content_hash or "")
    return text[:19] if text.startswith("sha256:") else text


def format_entries(entries: Sequence[Mapping[str, Any]]) -> str:
    if not entries:
        return "no journal entries"
    return table(["ENTRY", "RECORDED", "EXTENSION", "HASH", "OUTCOME", "STATUS", "REQUEST"],
                 [[e.get("id"), e.get("recorded_at"), e.get("extension_id"), _short(e.get("content_hash")),
                   e.get("outcome"), e.get("status"), e.get("request_id")] for e in entries])


def _divergence(divergence: Mapping[str, Any] | None) -> list[str]:
    if not divergence:
        return []
    return [f"first divergence at call {divergence.get('index')}: {divergence.get('reason', '')}".rstrip(),
            f"  expected: {divergence.get('expected')}",
            f"  actual:   {divergence.get('actual')}"]


def format_replay(report: Mapping[str, Any]) -> str:
    lines = [f"{report.get('verdict')}: entry {report.get('entry_id')} against {report.get('content_hash')} "
             f"({report.get('calls_replayed', 0)} host calls replayed)"]
    lines += _divergence(report.get("divergence"))
    diff = report.get("response_diff") or []
    if diff:
        lines.append("response diff:")
        lines += [f"  {line}" for line in diff]
    return "\n".join(lines)


def format_upgrade_check(check: Mapping[str, Any]) -> str:
    rows = [[row.get("entry_id"), row.get("recorded_at"), row.get("outcome"), row.get("verdict"),
             (row.get("divergence") or {}).get("index", row.get("error")), row.get("link")]
            for row in check.get("entries") or []]
    summary = check.get("summary") or {}
    counts = ", ".join(f"{name} {summary.get(name, 0)}" for name in
                       ("identical", "response_differs", "calls_differ", "new_failure", "error"))
    lines = [f"upgrade check {check.get('id')}: {check.get('extension_id')} {_short(check.get('from'))} -> "
             f"{_short(check.get('to'))}"]
    if rows:
        lines.append(table(["ENTRY", "RECORDED", "OUTCOME", "VERDICT", "AT CALL", "DIFF"], rows))
    else:
        lines.append("no recorded invocations of the installed version to replay")
    lines.append(f"{summary.get('total', 0)} replayed: {counts}")
    lines.append("PASSED" if check.get("passed") else "NOT PASSED")
    return "\n".join(lines)
