"""A stand-in for the platform's internal storage API (``/api/internal/ext-storage/install/{id}``), over the
SQLite backend: what the HTTP backend is tested against."""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import unquote

from runner_trio.capabilities import HostCallError
from runner_trio.capabilities.storage import Entry, SqliteStorage
from runner_trio.engine import HostScope

from ._servers import Handler, Req, Resp

AUTH_KEY = "runner-auth-key"
_PATH = re.compile(r"^/api/internal/ext-storage/install/([^/]+)$")
_STATUS = {"missing": 404, "conflict": 409, "denied": 400, "internal": 500}


def _item(entry: Entry) -> dict[str, Any]:
    return {
        "namespace": entry.namespace,
        "key": entry.key,
        "value": base64.b64encode(entry.value).decode(),
        "revision": entry.revision,
        "metadata": {"encoding": "base64-bytes"},
    }


def storage_api(store: SqliteStorage) -> Handler:
    async def handle(request: Req) -> Resp:
        if request.header("x-runner-auth") != AUTH_KEY:
            return Resp.json(401, {"error": "Invalid runner token", "code": "UNAUTHORIZED"})
        match = _PATH.match(request.path)
        if request.method != "POST" or match is None:
            return Resp.json(404, {"error": "no route"})
        scope = HostScope(request.header("x-alga-tenant") or "", "ext", install_id=unquote(match.group(1)))
        body = request.json()
        namespace = body["namespace"]
        try:
            if body["operation"] == "get":
                return Resp.json(200, _item(await store.get(scope, namespace, body["key"])))
            if body["operation"] == "put":
                value = base64.b64decode(body["value"])
                entry = await store.put(scope, namespace, body["key"], value, body.get("ifRevision"))
                return Resp.json(200, {"namespace": namespace, "key": entry.key, "revision": entry.revision})
            if body["operation"] == "delete":
                try:
                    await store.delete(scope, namespace, body["key"])
                except HostCallError as exc:
                    if exc.variant != "missing":
                        raise
                    return Resp.json(200, {"success": False})
                return Resp.json(200, {"success": True})
            if body["operation"] == "list":
                assert body["includeValues"] is True
                entries, cursor = await store.list_entries(scope, namespace, body.get("cursor"), body.get("limit"))
                return Resp.json(200, {"items": [_item(e) for e in entries], "nextCursor": cursor})
        except HostCallError as exc:
            return Resp.json(_STATUS[exc.variant], {"error": exc.detail, "code": exc.variant.upper()})
        return Resp.json(400, {"error": "Unsupported operation"})

    return handle
