"""Canary rollouts in the registry (migration 4): the record, its budget, and the repository methods.

A canary sends part of an extension's traffic to a new version: a percentage of one tenant's requests, or all
requests of a list of tenants. Its row says what it compares (``from_version_id`` -> ``to_version_id``), the
budget the new version must hold over ``window_s`` seconds, and how it ended (``state``, ``reason``,
``decided_at``, the per-arm ``stats`` at that moment). Deciding is a conditional update (``WHERE state =
'running'``), so when several gateways evaluate the same canary exactly one of them decides it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, TypeVar

from .._errors import RecordConflict, RecordNotFound
from . import _rows as rows
from ._db import Db

T = TypeVar("T")

CANARY_RUNNING: Final = "running"
CANARY_PROMOTED: Final = "promoted"
CANARY_ROLLED_BACK: Final = "rolled_back"
CANARY_CANCELLED: Final = "cancelled"
CANARY_STATES: Final = (CANARY_RUNNING, CANARY_PROMOTED, CANARY_ROLLED_BACK, CANARY_CANCELLED)

DEFAULT_MAX_ERROR_RATE: Final = 0.05
DEFAULT_MAX_TIMEOUT_RATE: Final = 0.05
DEFAULT_MIN_REQUESTS: Final = 20
"""Requests the new version must have answered before its error and timeout rates can break the budget."""

_CANARY_COLUMNS: Final = (
    "id, extension_id, tenant_id, tenants_json, from_version_id, to_version_id, percent, budget_json, window_s, "
    "state, reason, started_at, decided_at, actor, stats_json"
)


@dataclass(frozen=True)
class CanaryBudget:
    """What the new version must hold: rates over its requests (once there are ``min_requests``), and p99."""

    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    max_timeout_rate: float = DEFAULT_MAX_TIMEOUT_RATE
    max_p99_ms: float | None = None
    """None: latency is not judged."""
    min_requests: int = DEFAULT_MIN_REQUESTS

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> CanaryBudget:
        return cls(**{k: doc[k] for k in ("max_error_rate", "max_timeout_rate", "max_p99_ms", "min_requests")
                      if k in doc})


@dataclass(frozen=True)
class Canary:
    """One canary rollout of an extension.

    Exactly one of ``tenant_id`` (a percentage of that tenant's requests) and ``tenants`` (every request of
    those tenants; ``percent`` is 100) is set.
    """

    id: str
    extension_id: str
    tenant_id: str | None
    tenants: tuple[str, ...] | None
    from_version_id: str
    to_version_id: str
    percent: float
    budget: CanaryBudget
    window_s: int
    state: str
    reason: str | None
    started_at: str
    decided_at: str | None = None
    actor: str | None = None
    stats: Mapping[str, Any] | None = field(default=None, hash=False)

    @property
    def target_tenants(self) -> tuple[str, ...]:
        """The tenants whose install the canary concerns."""
        return self.tenants if self.tenants is not None else (self.tenant_id,) if self.tenant_id else ()


def _row_to_canary(row: Sequence[Any]) -> Canary:
    return Canary(
        id=row[0], extension_id=row[1], tenant_id=row[2],
        tenants=None if row[3] is None else tuple(json.loads(row[3])),
        from_version_id=row[4], to_version_id=row[5], percent=float(row[6]),
        budget=CanaryBudget.from_json(json.loads(row[7])), window_s=int(row[8]), state=row[9], reason=row[10],
        started_at=row[11], decided_at=row[12], actor=row[13],
        stats=None if row[14] is None else json.loads(row[14]),
    )


def _select_canary(conn: Db, canary_id: str) -> Canary:
    row = conn.execute(f"SELECT {_CANARY_COLUMNS} FROM canaries WHERE id = ?", (canary_id,)).fetchone()  # noqa: S608
    if row is None:
        raise RecordNotFound(f"no canary {canary_id!r}")
    return _row_to_canary(row)


class CanaryRepository:
    """The canary methods of :class:`~gateway_quart.registry.SqlRegistry` (both databases)."""

    async def _run(self, fn: Callable[[Db], T]) -> T:
        raise NotImplementedError

    async def create_canary(
        self,
        *,
        canary_id: str,
        extension_id: str,
        tenant_id: str | None,
        tenants: Sequence[str] | None,
        from_version_id: str,
        to_version_id: str,
        percent: float,
        budget: CanaryBudget,
        window_s: int,
        started_at: str,
        actor: str | None,
    ) -> Canary:
        """Record a running canary.

        Raises:
            RecordConflict: a running canary of the extension already concerns one of these tenants.
            RecordNotFound: a version is not one of the extension's.
        """
        record = Canary(canary_id, extension_id, tenant_id, None if tenants is None else tuple(tenants),
                        from_version_id, to_version_id, percent, budget, window_s, "running", None, started_at,
                        None, actor)
        wanted = set(record.target_tenants)

        def work(conn: Db) -> Canary:
            with conn.write():
                rows.check_version_of(conn, from_version_id, extension_id)
                rows.check_version_of(conn, to_version_id, extension_id)
                for other in _running(conn, extension_id):
                    if wanted & set(other.target_tenants):
                        raise RecordConflict(f"canary {other.id} of {extension_id!r} is running for these tenants")
                conn.execute(
                    f"INSERT INTO canaries ({_CANARY_COLUMNS}) "  # noqa: S608
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, NULL, ?, NULL)",
                    (record.id, extension_id, tenant_id, None if tenants is None else json.dumps(list(tenants)),
                     from_version_id, to_version_id, percent, json.dumps(budget.to_json()), window_s,
                     CANARY_RUNNING, started_at, actor),
                )
                return record

        return await self._run(work)

    async def get_canary(self, canary_id: str) -> Canary:
        return await self._run(lambda conn: _select_canary(conn, canary_id))

    async def list_running_canaries(self) -> list[Canary]:
        """Every running canary, oldest first (what the gateways route by)."""
        return await self._run(lambda conn: _running(conn, None))

    async def list_canaries(self, extension_id: str, *, state: str | None = None,
                            tenant_id: str | None = None, limit: int) -> list[Canary]:
        """The extension's canaries, newest first; ``state`` and ``tenant_id`` (percentage canaries of that
        tenant) narrow them."""
        where, params = "extension_id = ?", [extension_id]
        if state is not None:
            where, params = where + " AND state = ?", [*params, state]
        if tenant_id is not None:
            where, params = where + " AND tenant_id = ?", [*params, tenant_id]
        return await self._run(lambda conn: [_row_to_canary(row) for row in conn.execute(
            f"SELECT {_CANARY_COLUMNS} FROM canaries WHERE {where} "  # noqa: S608
            "ORDER BY started_at DESC, id DESC LIMIT ?", [*params, limit])])

    async def finish_canary(
        self, canary_id: str, *, state: str, reason: str, decided_at: str, stats: Mapping[str, Any] | None
    ) -> Canary | None:
        """End a running canary; ``None`` when it had already ended (another gateway, or a person, decided)."""

        def work(conn: Db) -> Canary | None:
            cursor = conn.execute(
                "UPDATE canaries SET state = ?, reason = ?, decided_at = ?, stats_json = ? "
                "WHERE id = ? AND state = ?",
                (state, reason, decided_at, None if stats is None else json.dumps(stats), canary_id, CANARY_RUNNING),
            )
            if cursor.rowcount == 0:
                _select_canary(conn, canary_id)  # RecordNotFound for an unknown id
                return None
            return _select_canary(conn, canary_id)

        return await self._run(work)


def _running(conn: Db, extension_id: str | None) -> list[Canary]:
    where, params = "state = ?", [CANARY_RUNNING]
    if extension_id is not None:
        where, params = where + " AND extension_id = ?", [*params, extension_id]
    return [_row_to_canary(row) for row in conn.execute(
        f"SELECT {_CANARY_COLUMNS} FROM canaries WHERE {where} ORDER BY started_at, id", params)]  # noqa: S608

