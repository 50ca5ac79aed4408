"""Hello-world sample extension built with componentize-py against the `alga:extension/runner` world.

Routes (the guest sees `http.url` as `path` + `?` + urlencoded query):
    GET  /hello?name=x  -> 200 JSON {"greeting": "hello x", "tenant": <context tenant id>}
    POST /echo          -> 200, the request body back with the request's content-type
    GET  /log           -> 204, logs through the logging import, print() (stdout) and sys.stderr
    GET  /sleep?ms=N    -> blocks in time.sleep (WASI monotonic clock) for N ms, then 200 JSON
    GET  /alloc?mb=N    -> allocates and touches N MiB, then 200 JSON
    GET  /journal-demo  -> 200 JSON of what the invocation journal records and replays: the wall clock
                           (time.time), the monotonic clock, randomness (os.urandom, random.SystemRandom),
                           the context; logs through the logging import, print() and sys.stderr
    GET  /raise         -> raises an uncaught exception (the component call traps)
    anything else       -> 404 JSON
"""

import json
import os
import random
import sys
import time
from urllib.parse import parse_qs

import wit_world
from wit_world.imports import context, logging
from wit_world.imports.types import ExecuteRequest, ExecuteResponse, HttpHeader

MIB = 1024 * 1024


def _json(status: int, value: object) -> ExecuteResponse:
    body = json.dumps(value).encode()
    return ExecuteResponse(status, [HttpHeader("content-type", "application/json")], body)


def _header(request: ExecuteRequest, name: str) -> str | None:
    for header in request.http.headers:
        if header.name.lower() == name:
            return header.value
    return None


def _hello(query: dict[str, list[str]]) -> ExecuteResponse:
    name = query.get("name", ["world"])[0]
    return _json(200, {"greeting": f"hello {name}", "tenant": context.get_context().tenant_id})


def _echo(request: ExecuteRequest) -> ExecuteResponse:
    content_type = _header(request, "content-type") or "application/octet-stream"
    return ExecuteResponse(200, [HttpHeader("content-type", content_type)], request.http.body)


def _log(query: dict[str, list[str]]) -> ExecuteResponse:
    msg = query.get("msg", ["py-hello log"])[0]
    logging.log_info(msg)
    logging.log_warn(msg)
    logging.log_error(msg)
    print(msg)
    print(msg, file=sys.stderr)
    return ExecuteResponse(204, [], None)


def _sleep(query: dict[str, list[str]]) -> ExecuteResponse:
    ms = int(query.get("ms", ["0"])[0])
    started = time.monotonic()
    time.sleep(ms / 1000)
    return _json(200, {"slept_ms": round((time.monotonic() - started) * 1000)})


def _alloc(query: dict[str, list[str]]) -> ExecuteResponse:
    mb = int(query.get("mb", ["1"])[0])
    # bytearray(n) zero-fills, so every page is really committed.
    chunks = [bytearray(MIB) for _ in range(mb)]
    return _json(200, {"allocated_mb": len(chunks)})


def _journal_demo() -> ExecuteResponse:
    started = time.monotonic()
    wall = time.time()
    token = os.urandom(8).hex()
    draw = random.SystemRandom().random()
    tenant = context.get_context().tenant_id
    logging.log_info(f"journal-demo {token}")
    print(f"journal-demo at {wall}")
    print(f"journal-demo draw {draw}", file=sys.stderr)
    return _json(200, {"wall": wall, "token": token, "draw": draw, "tenant": tenant,
                       "elapsed_ns": round((time.monotonic() - started) * 1e9)})


class WitWorld(wit_world.WitWorld):
    def handler(self, request: ExecuteRequest) -> ExecuteResponse:
        path, _, raw_query = request.http.url.partition("?")
        query = parse_qs(raw_query)
        method = request.http.method.upper()
        if method == "GET" and path == "/hello":
            return _hello(query)
        if method == "POST" and path == "/echo":
            return _echo(request)
        if method == "GET" and path == "/log":
            return _log(query)
        if method == "GET" and path == "/sleep":
            return _sleep(query)
        if method == "GET" and path == "/alloc":
            return _alloc(query)
        if method == "GET" and path == "/journal-demo":
            return _journal_demo()
        if method == "GET" and path == "/raise":
            raise RuntimeError("py-hello: deliberate uncaught exception")
        return _json(404, {"error": "not_found", "method": method, "path": path})
