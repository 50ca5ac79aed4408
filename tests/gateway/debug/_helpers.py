"""Writing entries the way the runner does, and reading a tail with a deadline."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import redis
import trio
from quart_trio import QuartTrio

from gateway_quart._errors import Unauthorized
from gateway_quart.debug import DebugCredentials, TailSubscription, create_debug_blueprint
from runner_trio.debug_events import DebugEvent, event_fields
from tests.gateway._helpers import start_server


def new_tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:10]}"


def key(tenant: str, extension: str = "com.acme.debug") -> str:
    return f"ext-debug:{tenant}:{extension}"


async def add(url: str, stream_key: str, **overrides: Any) -> str:
    """XADD one entry in the runner's layout (through its own ``event_fields``); returns the entry id."""
    fields: dict[str, Any] = {
        "level": "info",
        "stream": "log",
        "tenant": "t",
        "extension": "com.acme.debug",
        "message": "m",
        **overrides,
    }
    event = DebugEvent(**fields)

    def write() -> str:
        client = redis.Redis.from_url(url)
        try:
            entry_id = client.execute_command("XADD", stream_key, "*", *event_fields(event))  # type: ignore[no-untyped-call]
            return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        finally:
            client.close()

    return await trio.to_thread.run_sync(write)


async def take(
    events: TailSubscription, count: int, *, skip_heartbeats: bool = True, deadline: float = 5.0
) -> list[dict[str, Any]]:
    """The next ``count`` items of a tail (heartbeats skipped), failing after ``deadline`` seconds."""
    got: list[dict[str, Any]] = []
    with trio.fail_after(deadline):
        while len(got) < count:
            item = await events.__anext__()
            if skip_heartbeats and item.get("type") == "heartbeat":
                continue
            got.append(item)
    return got


async def tail_clients(url: str) -> int:
    """Connections that tails hold open right now (their client name is set for exactly this)."""

    def count() -> int:
        client = redis.Redis.from_url(url)
        try:
            return sum(1 for entry in client.client_list() if entry.get("name") == "ext-debug-tail")
        finally:
            client.close()

    return await trio.to_thread.run_sync(count)


# -- a gateway-shaped app around the blueprint ----------------------------------------------------------------

TENANT_A = "tenant-a"
TENANT_B = "tenant-b"
TOKENS: dict[str, tuple[str, frozenset[str]]] = {
    "tok-a": (TENANT_A, frozenset({"extension:read"})),
    "tok-b": (TENANT_B, frozenset({"extension:read", "extension:write"})),
    "tok-no-read": (TENANT_A, frozenset()),
}
SESSIONS: dict[str, tuple[str, frozenset[str]]] = {"session-a": (TENANT_A, frozenset({"extension:read"}))}
SESSION_COOKIE = "alga_session"


@dataclass(frozen=True)
class Caller:
    tenant_id: str
    permissions: frozenset[str]


async def authorize(credentials: DebugCredentials) -> Caller:
    """What the gateway's authorize does, with fixed tokens: bearer/query token first, else the session."""
    if credentials.token is not None:
        found = TOKENS.get(credentials.token)
    else:
        found = SESSIONS.get(credentials.cookies.get(SESSION_COOKIE, ""))
    if found is None:
        raise Unauthorized("unauthorized", "a bearer token or a session is required")
    return Caller(*found)


async def serve_debug(nursery: trio.Nursery, redis_url: str | None, **options: Any) -> str:
    """The blueprint in a Quart-trio app on Hypercorn at 127.0.0.1:<free port>; returns ``http://host:port``."""
    app = QuartTrio("debug_test")
    app.register_blueprint(create_debug_blueprint(redis_url=redis_url, authorize=authorize, **options))
    server = await start_server(nursery, app)
    return server.url
