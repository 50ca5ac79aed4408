"""Real parts for the gateway tests: Hypercorn servers on free ports, a contract-speaking runner, bundles.

The fake runner is a small Quart-trio app answering ``POST /v1/execute`` the way the runner contract says
(HTTP 200 with ``{status, headers, body_b64, error}``) and recording every call it received.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Response, request
from quart_trio import QuartTrio

import bundles
from bundles.store import FileStore

COMPONENT = b"\x00asm\x0d\x00\x01\x00"  # the binary of "(component)": enough for the bundle checks

ENDPOINTS = [
    {"method": "GET", "path": "/items", "handler": "list"},
    {"method": "HEAD", "path": "/items", "handler": "head"},
    {"method": "GET", "path": "/items/:id", "handler": "get"},
    {"method": "POST", "path": "/items", "handler": "create"},
    {"method": "PUT", "path": "/items/:id", "handler": "put"},
]


def manifest(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "com.example.echo",
        "publisher": "Example",
        "version": "1.0.0",
        "runtime": "wasm-js@1",
        "capabilities": ["cap:http.fetch", "cap:secrets.get", "cap:storage.kv"],
        "ui": {"type": "iframe", "entry": "ui/index.html"},
        "api": {"endpoints": ENDPOINTS},
    }
    data.update(overrides)
    return data


async def publish(store_dir: Path, tree_dir: Path, manifest_data: dict[str, Any], *, signed: bool = False) -> str:
    """Pack a bundle with ``manifest_data`` and publish it to the file store; returns ``sha256:<hex>``."""
    data = await trio.to_thread.run_sync(_pack, tree_dir, manifest_data)
    signature = None
    if signed:
        private_pem, _ = bundles.generate_private_key()
        signature = bundles.sign_bundle(data, private_pem)
    async with FileStore(str(store_dir)) as store:
        return await bundles.publish_bundle(store, data, signature)


def _pack(tree_dir: Path, manifest_data: dict[str, Any]) -> bytes:
    files = {
        "manifest.json": json.dumps(manifest_data).encode(),
        "dist/main.wasm": COMPONENT,
        "ui/index.html": b"<!doctype html><title>echo</title>",
    }
    for rel, data in files.items():
        (tree_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree_dir / rel).write_bytes(data)
    return bundles.pack_directory(tree_dir)


@dataclass
class Server:
    url: str
    stop: trio.Event
    stopped: trio.Event

    async def close(self) -> None:
        self.stop.set()
        await self.stopped.wait()


async def start_server(nursery: trio.Nursery, app: Any) -> Server:
    """Serve ``app`` with Hypercorn's trio worker on 127.0.0.1:0."""
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.graceful_timeout = 0.5
    config.accesslog = None
    config.errorlog = None
    stop, stopped = trio.Event(), trio.Event()

    async def run(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await serve(app, config, shutdown_trigger=stop.wait, task_status=task_status)
        finally:
            stopped.set()

    binds: list[str] = await nursery.start(run)
    return Server(binds[0], stop, stopped)


@dataclass
class RunnerReply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    body: bytes | None = b"{}"
    error: str | None = None
    http_status: int = 200
    delay_s: float = 0.0
    http_headers: dict[str, str] = field(default_factory=dict)  # of the runner's own answer (server-timing)
    journal_entry: str | None = None  # the id of the journal entry the runner says it recorded
    usage: dict[str, float] | None = None  # the answer's "usage" (contract.USAGE_FIELDS, calls.<capability>)


Behaviour = Callable[[dict[str, Any]], Awaitable[RunnerReply] | RunnerReply]


@dataclass
class FakeRunner:
    """Records ``/v1/execute`` calls; ``reply`` decides the answer (default: echo the http part back)."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    reply: Behaviour | None = None
    ready: bool = True  # what /readyz answers (200 or 503), for the gateway's health checks
    readyz_calls: int = 0
    replays: list[dict[str, Any]] = field(default_factory=list)
    replay: Callable[[dict[str, Any]], tuple[int, Any]] | None = None  # POST /v1/replay: (status, JSON answer)

    def app(self) -> QuartTrio:
        app = QuartTrio("fake_runner")

        @app.get("/readyz")
        async def readyz() -> Response:
            self.readyz_calls += 1
            status = 200 if self.ready else 503
            return Response(json.dumps({"status": "ready" if self.ready else "unavailable"}), status=status,
                            content_type="application/json")

        @app.post("/v1/execute")
        async def execute() -> Response:
            body = await request.get_json()
            call = {"headers": {k.lower(): v for k, v in request.headers.items()}, "body": body}
            self.calls.append(call)
            reply = self.reply(call) if self.reply is not None else _echo(call)
            if not isinstance(reply, RunnerReply):
                reply = await reply
            if reply.delay_s:
                await trio.sleep(reply.delay_s)
            if reply.http_status != 200:
                return Response(b"runner trouble", status=reply.http_status, headers=reply.http_headers)
            envelope = {
                "status": reply.status,
                "headers": reply.headers,
                "body_b64": None if reply.body is None else base64.b64encode(reply.body).decode(),
                "error": reply.error,
            }
            if reply.journal_entry is not None:
                envelope["journal_entry"] = reply.journal_entry
            if reply.usage is not None:
                envelope["usage"] = reply.usage
            return Response(json.dumps(envelope), status=200, content_type="application/json",
                            headers=reply.http_headers)

        @app.post("/v1/replay")
        async def replay() -> Response:
            call = {"headers": {k.lower(): v for k, v in request.headers.items()}, "body": await request.get_json()}
            self.replays.append(call)
            if self.replay is None:
                return Response(json.dumps({"error": "not_found"}), status=404, content_type="application/json")
            status, answer = self.replay(call)
            return Response(json.dumps(answer), status=status, content_type="application/json")

        return app


def _echo(call: dict[str, Any]) -> RunnerReply:
    http = call["body"]["http"]
    return RunnerReply(
        status=200,
        headers={
            "content-type": "application/json",
            "x-guest": "yes",
            "etag": '"v1"',
            "set-cookie": "stolen=1",
            "x-alga-internal": "nope",
            "connection": "keep-alive",
            "server": "guest",
            "x-content-type-options": "sniff-away",
        },
        body=json.dumps({"method": http["method"], "path": http["path"], "query": http["query"]}).encode(),
    )


async def start_runner(nursery: trio.Nursery, runner: FakeRunner) -> Server:
    return await start_server(nursery, runner.app())


def never(_: dict[str, Any]) -> RunnerReply:
    raise AssertionError("the runner must not be called")

