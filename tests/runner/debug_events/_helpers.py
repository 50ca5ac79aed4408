"""Shared pieces of the publisher tests: a running publisher, a context, reading a stream back."""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
import trio

from runner_trio._wire import RequestContext
from runner_trio.debug_events import DebugEventPublisher

HASH = "ab" * 32


def context(**overrides: str) -> RequestContext:
    """A request context under a fresh tenant, so every test has streams of its own."""
    fields: dict[str, str] = {
        "tenant_id": f"Tenant-{uuid.uuid4().hex[:8]}",
        "extension_id": "Com.Acme.Debug",
        "content_hash": HASH,
        "request_id": "Req-1",
        "install_id": "inst-1",
        "version_id": "ver-1",
        **overrides,
    }
    return RequestContext(**fields)  # type: ignore[arg-type]


def key_of(ctx: RequestContext, prefix: str = "ext-debug:") -> str:
    return f"{prefix}{ctx.tenant_id.lower()}:{ctx.extension_id.lower()}"


@asynccontextmanager
async def running(publisher: DebugEventPublisher) -> AsyncIterator[DebugEventPublisher]:
    async with trio.open_nursery() as nursery:
        await nursery.start(publisher.run)
        yield publisher
        nursery.cancel_scope.cancel()


async def entries(url: str, key: str) -> list[tuple[str, dict[str, str]]]:
    """``XRANGE key - +`` with fields decoded, in stream order (field order preserved)."""

    def read() -> list[tuple[str, dict[str, str]]]:
        client = redis.Redis.from_url(url, decode_responses=True)
        try:
            return [
                (str(entry_id), {str(name): str(value) for name, value in (fields or {}).items()})
                for entry_id, fields in client.xrange(key) or []
            ]
        finally:
            client.close()

    return await trio.to_thread.run_sync(read)


async def xlen(url: str, key: str) -> int:
    def read() -> int:
        client = redis.Redis.from_url(url)
        try:
            return int(client.xlen(key))
        finally:
            client.close()

    return await trio.to_thread.run_sync(read)


class Counter:
    """A callback target for ``on_published`` / ``on_dropped`` that sums what it is told."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # on_dropped is called from guest worker threads too
        self.total = 0
        self.calls = 0

    def __call__(self, count: int) -> None:
        with self._lock:
            self.total += count
            self.calls += 1
