"""An open debug tail dies with its credential: revoking the token closes it within the auth cache TTL."""

from __future__ import annotations

import pytest
import trio
from trio_websocket import ConnectionClosed

from tests._redis import RedisServer
from tests.gateway.conftest import GatewayFactory

from ._helpers import add, key
from .test_routes import connect, receive


async def test_revoking_a_token_closes_its_open_websocket_tail(
    make_gateway: GatewayFactory, redis_server: RedisServer
) -> None:
    ttl = 1.0
    gateway = await make_gateway(debug_redis_url=redis_server.url, auth_cache_ttl_s=ttl)
    tenant = await gateway.tenant("acme-dbg")
    token = await gateway.admin_post(f"/api/v1/users/{tenant.user_id}/tokens", {"name": "tail"}, expect=201)
    token_id, secret = token["id"], token["token"]
    stream = key("acme-dbg", "com.acme.debug")
    await add(redis_server.url, stream, message="before")
    async with connect(gateway.url, "extensionId=com.acme.debug&last=1", token=secret) as ws:
        assert [e["message"] for e in await receive(ws, 1)] == ["before"]
        resp = await gateway.client.delete(f"/api/v1/tokens/{token_id}", headers=gateway.admin)
        assert resp.status_code == 200
        await add(redis_server.url, stream, message="after revocation")
        with trio.fail_after(ttl * 3):  # one period, generously: never the tail's whole life
            try:
                while True:
                    await ws.get_message()
            except ConnectionClosed as closed:
                reason = closed.reason
        assert reason is not None
        assert (reason.code, reason.reason) == (4401, "credentials_revoked")
    # The token no longer opens a tail at all.
    async with connect(gateway.url, "extensionId=com.acme.debug", token=secret) as ws:
        with trio.fail_after(5), pytest.raises(ConnectionClosed) as refused:
            await ws.get_message()
    assert refused.value.reason is not None
    assert refused.value.reason.code == 4401
