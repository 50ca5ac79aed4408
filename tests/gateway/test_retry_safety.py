"""Which calls the gateway repeats once a runner may have received them: only GET/HEAD and keyed ones.

A runner that takes the request and drops the connection without answering is the case that matters: the guest
may have run. A keyed call may go on to the next runner (the runner's idempotency store makes it run at most
once); a non-GET without the client's key must not.
"""

from __future__ import annotations

import trio

from .conftest import Gateway, GatewayFactory, Tenant


class DroppingRunner:
    """Reads each request's head and closes the connection without a word; counts the requests."""

    def __init__(self) -> None:
        self.requests = 0
        self.url = ""

    async def serve(self, nursery: trio.Nursery) -> None:
        listeners = await nursery.start(trio.serve_tcp, self._handle, 0)
        port = listeners[0].socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def _handle(self, stream: trio.SocketStream) -> None:
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            received += chunk
        if not received.startswith(b"GET /readyz "):  # the gateway's health checks are not calls
            self.requests += 1
        await stream.aclose()


async def _gateway(nursery: trio.Nursery, make_gateway: GatewayFactory) -> tuple[Gateway, Tenant, DroppingRunner]:
    runner = DroppingRunner()
    await runner.serve(nursery)
    gateway = await make_gateway(runner_urls=(runner.url, runner.url))
    await gateway.register(await gateway.publish("v1"))
    tenant = await gateway.tenant("acme")
    await gateway.install("acme")
    return gateway, tenant, runner


async def test_a_post_without_a_key_is_not_repeated_after_it_was_sent(
    nursery: trio.Nursery, make_gateway: GatewayFactory
) -> None:
    gateway, tenant, runner = await _gateway(nursery, make_gateway)
    resp = await gateway.client.post("/api/ext/echo/items", json={}, headers=tenant.auth)
    assert resp.status_code == 502
    assert runner.requests == 1


async def test_keyed_posts_and_gets_are_repeated(nursery: trio.Nursery, make_gateway: GatewayFactory) -> None:
    gateway, tenant, runner = await _gateway(nursery, make_gateway)
    resp = await gateway.client.post("/api/ext/echo/items", json={},
                                     headers={**tenant.auth, "idempotency-key": "order-1"})
    assert resp.status_code == 502
    assert runner.requests == 3  # GATEWAY_RUNNER_ATTEMPTS default
    resp = await gateway.client.get("/api/ext/echo/items", headers=tenant.auth)
    assert resp.status_code == 502
    assert runner.requests == 6
