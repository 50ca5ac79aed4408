"""Usage rows and tenant budgets in the registry (migration 5): records and the SQL both backends run.

``usage_minutes`` holds one row per (tenant, extension, UTC minute); :func:`add_usage` adds a batch of deltas to
it in one write transaction (``INSERT ... ON CONFLICT DO UPDATE SET x = x + excluded.x``), so concurrent
gateways flushing the same minute add up instead of overwriting each other. The per-capability call counts
(``calls.<capability>`` keys of a runner's ``usage``) are a JSON object per row, merged in Python under the same
write lock (a JSON sum is not portable SQL). Reads aggregate in SQL by the first 10/13/16 characters of the
minute (day/hour/minute).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from contract import USAGE_FIELDS

from . import _rows as rows
from ._db import Db

GRANULARITY_PREFIX: Final = {"minute": 16, "hour": 13, "day": 10}
"""How many characters of ``YYYY-MM-DDTHH:MM:00Z`` name a bucket of each granularity."""
_BUCKET_SUFFIX: Final = {"minute": ":00Z", "hour": ":00:00Z", "day": "T00:00:00Z"}
BUDGET_PERIODS: Final = ("minute", "hour", "day")


@dataclass(frozen=True)
class UsageDelta:
    """What one flush adds to the row of (tenant, extension, minute)."""

    tenant_id: str
    extension_id: str
    minute: str
    """The minute's start, RFC 3339 UTC (``2026-12-06T10:15:00Z``)."""
    invocations: int = 0
    errors: int = 0
    fields: Mapping[str, float] = field(default_factory=dict)
    """Sums of :data:`contract.USAGE_FIELDS` (a missing field adds 0)."""
    calls: Mapping[str, float] = field(default_factory=dict)
    """Host calls per capability (the ``<capability>`` of ``calls.<capability>``)."""


@dataclass(frozen=True)
class UsageBucket:
    """The sums of one extension over one bucket (a minute, hour or day starting at ``start``)."""

    start: str
    extension_id: str
    invocations: int
    errors: int
    fields: dict[str, float]
    calls: dict[str, float]


@dataclass(frozen=True)
class Budget:
    """A tenant's limit on one counter (``invocations``, ``errors`` or a usage field) per fixed UTC period."""

    name: str
    period: str
    limit: float


_COLUMNS: Final = ("invocations", "errors", *USAGE_FIELDS)


def add_usage(conn: Db, deltas: Sequence[UsageDelta]) -> None:
    """Add every delta to its row (created at zero when missing); one write transaction for the batch."""
    # Column names come from _COLUMNS (constants), never from input: the f-strings below build fixed SQL.
    columns = ", ".join(_COLUMNS)
    marks = ", ".join("?" for _ in _COLUMNS)
    adds = ", ".join(f"{c} = usage_minutes.{c} + excluded.{c}" for c in _COLUMNS)
    insert = (f"INSERT INTO usage_minutes (tenant_id, extension_id, minute, {columns}, calls_json) "  # noqa: S608
              f"VALUES (?, ?, ?, {marks}, ?) ON CONFLICT (tenant_id, extension_id, minute) DO UPDATE SET {adds}")
    with conn.write():
        for delta in deltas:
            calls_json = "{}"
            if delta.calls:
                row = conn.execute(
                    "SELECT calls_json FROM usage_minutes WHERE tenant_id = ? AND extension_id = ? AND minute = ?",
                    (delta.tenant_id, delta.extension_id, delta.minute),
                ).fetchone()
                merged = _merge_calls({} if row is None else _calls(row[0]), delta.calls)
                calls_json = json.dumps(merged, sort_keys=True, separators=(",", ":"))
            values = [delta.invocations, delta.errors, *(float(delta.fields.get(f, 0.0)) for f in USAGE_FIELDS)]
            conn.execute(
                insert + (", calls_json = excluded.calls_json" if delta.calls else ""),
                (delta.tenant_id, delta.extension_id, delta.minute, *values, calls_json),
            )


def delete_usage_before(conn: Db, minute: str) -> int:
    """Delete the rows of every minute before ``minute`` (the retention sweep); returns how many went."""
    with conn.write():
        cursor = conn.execute("DELETE FROM usage_minutes WHERE minute < ?", (minute,))
    return max(cursor.rowcount, 0)


def usage_buckets(conn: Db, tenant_id: str, *, start: str, end: str, extension_id: str | None,
                  granularity: str) -> list[UsageBucket]:
    """Sums per (bucket, extension) of the rows with ``start <= minute < end``, oldest bucket first."""
    width = GRANULARITY_PREFIX[granularity]  # a fixed integer: safe to write into the SQL
    where = "tenant_id = ? AND minute >= ? AND minute < ?"
    params: list[Any] = [tenant_id, start, end]
    if extension_id is not None:
        where += " AND extension_id = ?"
        params.append(extension_id)
    sums = ", ".join(f"SUM({c})" for c in _COLUMNS)
    found: dict[tuple[str, str], UsageBucket] = {}
    select = (f"SELECT substr(minute, 1, {width}) AS bucket, extension_id, {sums} "  # noqa: S608 - fixed names
              f"FROM usage_minutes WHERE {where} GROUP BY bucket, extension_id ORDER BY bucket, extension_id")
    for row in conn.execute(select, params):
        start_at = row[0] + _BUCKET_SUFFIX[granularity]
        values = [float(v or 0) for v in row[2:]]
        found[(row[0], row[1])] = UsageBucket(start_at, row[1], int(values[0]), int(values[1]),
                                              dict(zip(USAGE_FIELDS, values[2:], strict=True)), {})
    for row in conn.execute(
        f"SELECT substr(minute, 1, {width}), extension_id, calls_json FROM usage_minutes WHERE {where} "  # noqa: S608
        "AND calls_json <> '{}'", params,
    ):
        bucket = found.get((row[0], row[1]))
        if bucket is not None:
            bucket.calls.update(_merge_calls(bucket.calls, _calls(row[2])))
    return list(found.values())


def get_budgets(conn: Db, tenant_id: str) -> list[Budget]:
    return [Budget(row[0], row[1], float(row[2])) for row in conn.execute(
        "SELECT name, period, limit_value FROM tenant_budgets WHERE tenant_id = ? ORDER BY name, period",
        (tenant_id,))]


def set_budgets(conn: Db, tenant_id: str, budgets: Sequence[Budget], *, now: str) -> None:
    """Replace the tenant's budgets.

    Raises:
        RecordNotFound: no such tenant.
    """
    with conn.write():
        rows.get_tenant(conn, tenant_id)
        conn.execute("DELETE FROM tenant_budgets WHERE tenant_id = ?", (tenant_id,))
        for budget in budgets:
            conn.execute(
                "INSERT INTO tenant_budgets (tenant_id, name, period, limit_value, updated_at) VALUES (?, ?, ?, ?, ?)",
                (tenant_id, budget.name, budget.period, float(budget.limit), now),
            )


def _calls(text: str) -> dict[str, float]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _merge_calls(base: Mapping[str, float], more: Mapping[str, float]) -> dict[str, float]:
    out = dict(base)
    for name, count in more.items():
        out[name] = out.get(name, 0.0) + float(count)
    return out
