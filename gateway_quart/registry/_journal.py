"""The registry's journal records (migration 2): install journal policies, the index of recorded journal
entries, per-tenant settings and stored upgrade checks.

A mixin of :class:`~gateway_quart.registry.SqlRegistry`, so the same SQL runs on SQLite and PostgreSQL. The
journal entries themselves are sealed objects in the bundle store (``journal/``); the registry only indexes
them (tenant, extension, hash, outcome, time), which is what listing, replay and the retention sweeper read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from .._errors import RecordNotFound
from . import _rows as rows
from ._db import Db
from ._models import Install, JournalIndexEntry, UpgradeCheck

T = TypeVar("T")


class JournalRecords:
    """The journal methods of the :class:`~gateway_quart.registry.Registry` protocol over a ``Db``."""

    async def _run(self, fn: Callable[[Db], T]) -> T:
        raise NotImplementedError

    async def set_journal_policy(self, tenant_id: str, extension_id: str, policy: str) -> Install:
        def work(conn: Db) -> Install:
            cursor = conn.execute(
                "UPDATE installs SET journal_policy = ? WHERE tenant_id = ? AND extension_id = ?",
                (policy, tenant_id, extension_id),
            )
            if cursor.rowcount == 0:
                raise RecordNotFound(f"extension {extension_id!r} is not installed for {tenant_id!r}")
            return rows.get_install(conn, tenant_id, extension_id)

        return await self._run(work)

    async def record_journal_entries(self, entries: Sequence[JournalIndexEntry]) -> int:
        def work(conn: Db) -> int:
            written = 0
            with conn.write():
                for e in entries:
                    cursor = conn.execute(
                        "INSERT INTO journal_entries (id, tenant_id, extension_id, install_id, content_hash, "
                        "request_id, outcome, status, recorded_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT DO NOTHING",
                        (e.id, e.tenant_id, e.extension_id, e.install_id, e.content_hash, e.request_id, e.outcome,
                         e.status, e.recorded_at, e.expires_at),
                    )
                    written += max(cursor.rowcount, 0)
            return written

        if not entries:
            return 0
        return await self._run(work)

    async def list_journal_entries(
        self,
        tenant_id: str,
        *,
        extension_id: str | None = None,
        outcome: str | None = None,
        content_hash: str | None = None,
        limit: int,
    ) -> list[JournalIndexEntry]:
        where = ["tenant_id = ?"]
        params: list[Any] = [tenant_id]
        for column, value in (("extension_id", extension_id), ("outcome", outcome), ("content_hash", content_hash)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"{rows.JOURNAL_SELECT} WHERE {' AND '.join(where)} ORDER BY recorded_at DESC, id LIMIT ?"
        return await self._run(
            lambda conn: [rows.row_to_journal(row) for row in conn.execute(sql, (*params, limit))]
        )

    async def get_journal_entry(self, tenant_id: str, entry_id: str) -> JournalIndexEntry:
        def work(conn: Db) -> JournalIndexEntry:
            row = conn.execute(
                f"{rows.JOURNAL_SELECT} WHERE id = ? AND tenant_id = ?", (entry_id, tenant_id)
            ).fetchone()
            if row is None:
                raise RecordNotFound(f"no journal entry {entry_id!r} of tenant {tenant_id!r}")
            return rows.row_to_journal(row)

        return await self._run(work)

    async def list_expired_journal_entries(self, now: str, *, limit: int) -> list[JournalIndexEntry]:
        return await self._run(
            lambda conn: [
                rows.row_to_journal(row)
                for row in conn.execute(
                    f"{rows.JOURNAL_SELECT} WHERE expires_at <= ? ORDER BY expires_at LIMIT ?", (now, limit)
                )
            ]
        )

    async def delete_journal_entries(self, entry_ids: Sequence[str]) -> int:
        if not entry_ids:
            return 0
        marks = ", ".join("?" for _ in entry_ids)

        def work(conn: Db) -> int:
            cursor = conn.execute(f"DELETE FROM journal_entries WHERE id IN ({marks})", tuple(entry_ids))  # noqa: S608
            return max(cursor.rowcount, 0)

        return await self._run(work)

    async def get_tenant_settings(self, tenant_id: str) -> dict[str, Any]:
        def work(conn: Db) -> dict[str, Any]:
            rows.get_tenant(conn, tenant_id)
            row = conn.execute("SELECT settings_json FROM tenant_settings WHERE tenant_id = ?", (tenant_id,)).fetchone()
            return {} if row is None else dict(json.loads(row[0]))

        return await self._run(work)

    async def update_tenant_settings(self, tenant_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        def work(conn: Db) -> dict[str, Any]:
            with conn.write():
                rows.get_tenant(conn, tenant_id)
                row = conn.execute(
                    "SELECT settings_json FROM tenant_settings WHERE tenant_id = ?", (tenant_id,)
                ).fetchone()
                merged = {**({} if row is None else json.loads(row[0])), **changes}
                conn.execute(
                    "INSERT INTO tenant_settings (tenant_id, settings_json) VALUES (?, ?) "
                    "ON CONFLICT (tenant_id) DO UPDATE SET settings_json = excluded.settings_json",
                    (tenant_id, json.dumps(merged, sort_keys=True)),
                )
                return merged

        return await self._run(work)

    async def record_upgrade_check(self, check: UpgradeCheck) -> UpgradeCheck:
        await self._run(
            lambda conn: conn.execute(
                "INSERT INTO upgrade_checks (id, tenant_id, extension_id, from_hash, to_hash, passed, report_json, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (check.id, check.tenant_id, check.extension_id, check.from_hash, check.to_hash,
                 1 if check.passed else 0, check.report_json, check.created_at),
            )
        )
        return check

    async def find_upgrade_check(
        self, tenant_id: str, extension_id: str, from_hash: str, to_hash: str, *, since: str
    ) -> UpgradeCheck | None:
        def work(conn: Db) -> UpgradeCheck | None:
            row = conn.execute(
                f"{rows.UPGRADE_CHECK_SELECT} WHERE tenant_id = ? AND extension_id = ? AND from_hash = ? "
                "AND to_hash = ? AND created_at >= ? ORDER BY created_at DESC, id LIMIT 1",
                (tenant_id, extension_id, from_hash, to_hash, since),
            ).fetchone()
            return None if row is None else rows.row_to_upgrade_check(row)

        return await self._run(work)
