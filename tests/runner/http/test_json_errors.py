"""The runner never answers HTML: unknown routes, wrong methods and unexpected exceptions are JSON."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
import trio

from runner_trio import Settings, create_app
from servicekit import serve_app

from .conftest import TOKEN


class Boom(Exception):
    pass


async def test_unknown_routes_wrong_methods_and_exceptions_answer_json(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(runner_settings())

    @app.get("/test-only/boom")  # added through the app object: the product has no such route
    async def boom() -> str:
        raise Boom("a bug in a handler")

    stop = trio.Event()
    binds = await nursery.start(
        lambda task_status: serve_app(
            app, bind="127.0.0.1:0", drain_timeout=1, name="runner", shutdown=stop, signals=(),
            task_status=task_status,
        )
    )
    caplog.set_level(logging.ERROR, logger="runner_trio")
    async with httpx.AsyncClient(base_url=binds[0], headers={"authorization": f"Bearer {TOKEN}"}) as client:
        response = await client.get("/test-only/boom", headers={"x-request-id": "rid-boom-1"})
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["error"] == "internal_error"
        assert body["request_id"] == "rid-boom-1"
        assert body["message"]
        [record] = [r for r in caplog.records if r.name == "runner_trio" and "rid-boom-1" in r.getMessage()]
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], Boom)

        response = await client.get("/no/such/route")
        assert (response.status_code, response.headers["content-type"]) == (404, "application/json")
        assert response.json()["error"] == "not_found"
        assert response.json()["request_id"]

        response = await client.get("/v1/execute")
        assert (response.status_code, response.headers["content-type"]) == (405, "application/json")
        assert response.json()["error"] == "method_not_allowed"
        assert "POST" in response.headers["allow"]

        response = await client.delete("/healthz")
        assert (response.status_code, response.json()["error"]) == (405, "method_not_allowed")
        assert (await client.get("/healthz")).json() == {"status": "ok"}
    stop.set()
