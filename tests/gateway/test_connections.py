"""HTTP/1.1 on the wire: an early answer never leaves a connection deaf, and ``Connection: close`` is honoured.

Each test talks raw HTTP/1.1 on one socket (tests/_http1.py), the way the lost requests of issue 13 were
reproduced: an answer sent before the request body was read (429, 401, 404) must close the connection
(saying so), never leave it open and silent.
"""

from __future__ import annotations

import pytest

from tests._http1 import RawConnection, assert_early_answer_closes

from .conftest import Gateway, GatewayFactory, Tenant

BODY = b'{"name": "a widget!"}'[:20]


async def test_a_rate_limited_post_closes_its_connection(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(rate_limit_burst=1, rate_limit_rps=0.01)
    await gateway.register(await gateway.publish("v1"))
    acme = await gateway.tenant("acme")
    await gateway.install("acme")
    assert (await gateway.client.get("/api/ext/echo/items", headers=acme.auth)).status_code == 200
    await assert_early_answer_closes(gateway.url, "/api/ext/echo/items", acme.auth, 429, BODY)
    assert len(gateway.runner.calls) == 1  # the refused call never reached the runner


async def test_an_unauthenticated_post_closes_its_connection(installed: tuple[Gateway, Tenant]) -> None:
    gateway, _ = installed
    await assert_early_answer_closes(gateway.url, "/api/ext/echo/items", {}, 401, BODY)


async def test_a_post_to_an_unknown_extension_closes_its_connection(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    await assert_early_answer_closes(gateway.url, "/api/ext/nope/items", tenant.auth, 404, BODY)


@pytest.mark.parametrize("path", ["/readyz", "/api/ext/echo/items"])
async def test_connection_close_from_the_client_is_honoured(installed: tuple[Gateway, Tenant], path: str) -> None:
    gateway, tenant = installed
    conn = await RawConnection.open(gateway.url)
    try:
        assert await conn.send_head("GET", path, {**tenant.auth, "Connection": "close"})
        response = await conn.read_response()
        assert response is not None
        assert response.status == 200
        assert await conn.closed_by_server()
    finally:
        await conn.aclose()


async def test_a_kept_alive_connection_serves_request_after_request(installed: tuple[Gateway, Tenant]) -> None:
    gateway, tenant = installed
    conn = await RawConnection.open(gateway.url)
    try:
        for _ in range(20):
            assert await conn.send_head("GET", "/api/ext/echo/items", tenant.auth)
            response = await conn.read_response()
            assert response is not None
            assert response.status == 200
            assert "connection" not in response.headers
    finally:
        await conn.aclose()
