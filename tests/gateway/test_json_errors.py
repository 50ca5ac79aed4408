"""The gateway never answers HTML: an unexpected exception is a JSON 500 with a request id, logged with it."""

from __future__ import annotations

import logging

import httpx
import pytest
import trio

from gateway_quart import create_app

from ._helpers import start_server
from .conftest import GatewayFactory


class Boom(Exception):
    pass


async def test_unexpected_exception_is_a_json_500_and_http_errors_keep_their_shape(
    nursery: trio.Nursery, make_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = await make_gateway()
    app = create_app(gateway.settings)

    @app.get("/test-only/boom")  # added through the app object: the product has no such route
    async def boom() -> str:
        raise Boom("a bug in a handler")

    server = await start_server(nursery, app)
    caplog.set_level(logging.ERROR, logger="gateway_quart")
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            response = await client.get("/test-only/boom", headers={"x-request-id": "gw-boom-1"})
            assert response.status_code == 500
            assert response.headers["content-type"] == "application/json"
            body = response.json()
            assert body["error"] == "internal_error"
            assert body["requestId"] == "gw-boom-1", "the gateway's bodies name the id requestId"
            assert response.headers["x-request-id"] == "gw-boom-1"
            assert response.headers["x-content-type-options"] == "nosniff", "security headers still apply"
            [record] = [r for r in caplog.records if "gw-boom-1" in r.getMessage()]
            assert record.exc_info is not None
            assert isinstance(record.exc_info[1], Boom)

            # The gateway's own HTTP error answers are unchanged.
            response = await client.get("/nope")
            assert (response.status_code, response.json()) == (404, {"error": "not_found"})
            response = await client.patch("/healthz")
            assert (response.status_code, response.json()["error"]) == (405, "method_not_allowed")
    finally:
        await server.close()
