"""hello-py: a to-do list kept in the host's `storage`, a secret, an allowlisted service (componentize-py).

The same API as examples/hello-js (JSON in and out; the guest sees `http.url` as path + "?" + query):
    GET  /items           -> 200 {"items": [{"id", "text"}, ...]}  (oldest first)
    POST /items {"text"}  -> 201 {"id", "text"}; 400 {"error": "bad_input"} without a non-empty text
    GET  /secret          -> 200 {"key": "api_key", "present": bool, "length": int}  (never the value)
    POST /fetch {"url"}   -> 200 {"status", "body"} (the first 500 characters) from http.fetch; 502 {"error": …}
                             when the host refuses (`not-allowed`: the host is not on EXT_EGRESS_ALLOWLIST)
    anything else         -> 404 {"error": "not_found"}
"""

import json
import time

import wit_world
from componentize_py_types import Err
from wit_world.imports import http, logging, secrets, storage
from wit_world.imports.types import ExecuteRequest, ExecuteResponse, HttpHeader, HttpRequest, StorageEntry

NAMESPACE = "items"
SECRET_NAME = "api_key"  # noqa: S105 - the name of the install secret the UI reports on, not a secret
MAX_TEXT = 200
MAX_BODY_PREVIEW = 500


def _json(status: int, value: object) -> ExecuteResponse:
    return ExecuteResponse(status, [HttpHeader("content-type", "application/json")], json.dumps(value).encode())


def _error_name(err: Err) -> str:
    # A WIT enum arrives as a Python enum member: its name, in WIT's kebab-case.
    return getattr(err.value, "name", str(err.value)).lower().replace("_", "-")


def _body(request: ExecuteRequest) -> dict:
    try:
        value = json.loads(bytes(request.http.body or b"") or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _list_items() -> ExecuteResponse:
    try:
        entries = storage.list_entries(NAMESPACE, None)
    except Err as err:
        return _json(502, {"error": _error_name(err)})
    items = [{"id": e.key, "text": bytes(e.value).decode()} for e in sorted(entries, key=lambda e: e.key)]
    return _json(200, {"items": items})


def _create_item(request: ExecuteRequest) -> ExecuteResponse:
    text = _body(request).get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        return _json(400, {"error": "bad_input", "message": f"text: 1 to {MAX_TEXT} characters"})
    item_id = f"{time.time_ns():020d}"  # sorts by creation time
    try:
        storage.put(StorageEntry(NAMESPACE, item_id, text.strip().encode(), None))
    except Err as err:
        return _json(502, {"error": _error_name(err)})
    logging.log_info(f"created item {item_id}")
    return _json(201, {"id": item_id, "text": text.strip()})


def _secret() -> ExecuteResponse:
    try:
        value = secrets.get(SECRET_NAME)
    except Err as err:
        return _json(200, {"key": SECRET_NAME, "present": False, "error": _error_name(err), "length": 0})
    return _json(200, {"key": SECRET_NAME, "present": True, "length": len(value)})


def _fetch(request: ExecuteRequest) -> ExecuteResponse:
    url = _body(request).get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return _json(400, {"error": "bad_input", "message": "url: an http(s) URL"})
    try:
        answer = http.fetch(HttpRequest("GET", url, [HttpHeader("accept", "application/json")], None))
    except Err as err:
        logging.log_warn(f"fetch {url}: {_error_name(err)}")
        return _json(502, {"error": _error_name(err)})
    body = bytes(answer.body or b"").decode("utf-8", "replace")
    return _json(200, {"status": answer.status, "body": body[:MAX_BODY_PREVIEW]})


class WitWorld(wit_world.WitWorld):
    def handler(self, request: ExecuteRequest) -> ExecuteResponse:
        path = request.http.url.partition("?")[0]
        route = (request.http.method.upper(), path)
        if route == ("GET", "/items"):
            return _list_items()
        if route == ("POST", "/items"):
            return _create_item(request)
        if route == ("GET", "/secret"):
            return _secret()
        if route == ("POST", "/fetch"):
            return _fetch(request)
        return _json(404, {"error": "not_found", "path": path})
