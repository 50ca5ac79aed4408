"""``json_errors``: every error answer is JSON, and an unexpected exception is a 500 whose request id is in the log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import trio
from quart import Response, g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, NotFound

from servicekit import json_errors, serve_app

LOGGER = "tests.servicekit.json_errors"

Serve = Callable[[QuartTrio], Awaitable[httpx.AsyncClient]]


class Boom(Exception):
    pass


def make_app(*, own_handler: str | None = None, id_field: str = "request_id") -> QuartTrio:
    app = QuartTrio("json-errors-test")

    async def own(exc: HTTPException) -> Response:
        return Response('{"mine": true}', status=exc.code or 500, content_type="application/json")

    if own_handler == "before":
        app.register_error_handler(HTTPException, own)
    json_errors(app, logging.getLogger(LOGGER), id_field=id_field)
    if own_handler == "after":
        app.register_error_handler(HTTPException, own)

    @app.get("/ok")
    async def ok() -> str:
        return "ok"

    @app.get("/boom")
    async def boom() -> str:
        raise Boom("the handler broke")

    @app.get("/group")
    async def group() -> str:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_raise_boom)
        return "unreachable"

    @app.get("/with-id")
    async def with_id() -> str:
        g.request_id = "app-chosen-id"
        raise Boom("after the app named the request")

    @app.get("/gone")
    async def gone() -> str:
        raise NotFound("that thing is gone")

    @app.get("/late")
    async def late() -> str:
        return "fine until after_request"

    @app.after_request
    async def break_late(response: Response) -> Response:
        if request.path == "/late":
            raise Boom("after_request broke")
        return response

    return app


async def _raise_boom() -> None:
    raise Boom("in a child task")


@pytest.fixture
async def serve(nursery: trio.Nursery) -> AsyncIterator[Serve]:
    clients: list[httpx.AsyncClient] = []
    stops: list[trio.Event] = []

    async def start(app: QuartTrio) -> httpx.AsyncClient:
        stop = trio.Event()
        binds = await nursery.start(
            lambda task_status: serve_app(
                app, bind="127.0.0.1:0", drain_timeout=1, name="json-errors-test", shutdown=stop, signals=(),
                task_status=task_status,
            )
        )
        stops.append(stop)
        client = httpx.AsyncClient(base_url=binds[0], timeout=10)
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.aclose()
    for stop in stops:
        stop.set()


def assert_json(response: httpx.Response) -> dict[str, object]:
    assert response.headers["content-type"] == "application/json", response.text
    body: dict[str, object] = response.json()
    return body


async def test_unexpected_exception_is_a_json_500_with_a_logged_request_id(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    client = await serve(make_app())
    caplog.set_level(logging.ERROR, logger=LOGGER)
    response = await client.get("/boom")
    assert response.status_code == 500
    body = assert_json(response)
    rid = body["request_id"]
    assert isinstance(rid, str)
    assert len(rid) >= 16
    assert body["error"] == "internal_error"
    assert "request id" in str(body["message"])
    assert "the handler broke" not in response.text, "the exception's text stays in the log"
    assert response.headers["x-request-id"] == rid
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert rid in record.getMessage()
    assert "GET /boom" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], Boom)
    assert record.exc_text is None or "the handler broke" in record.exc_text


async def test_the_callers_request_id_is_used_when_well_formed(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    client = await serve(make_app())
    caplog.set_level(logging.ERROR, logger=LOGGER)
    response = await client.get("/boom", headers={"x-request-id": "caller-42"})
    assert assert_json(response)["request_id"] == "caller-42"
    response = await client.get("/boom", headers={"x-request-id": "bad id\twith tab"})
    assert assert_json(response)["request_id"] != "bad id\twith tab"
    response = await client.get("/with-id", headers={"x-request-id": "caller-43"})
    assert assert_json(response)["request_id"] == "app-chosen-id"
    assert any("app-chosen-id" in r.getMessage() for r in caplog.records)


async def test_child_task_failures_and_after_request_failures_are_json_500s(serve: Serve) -> None:
    client = await serve(make_app())
    for path in ("/group", "/late"):
        response = await client.get(path)
        assert response.status_code == 500, path
        assert assert_json(response)["error"] == "internal_error"


async def test_http_errors_are_json(serve: Serve) -> None:
    client = await serve(make_app())
    response = await client.get("/nope")
    assert response.status_code == 404
    body = assert_json(response)
    assert body["error"] == "not_found"
    assert body["request_id"]
    response = await client.post("/ok")
    assert response.status_code == 405
    assert assert_json(response)["error"] == "method_not_allowed"
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}
    response = await client.get("/gone")
    assert (response.status_code, assert_json(response)["message"]) == (404, "that thing is gone")
    assert (await client.get("/ok")).text == "ok"


@pytest.mark.parametrize("own_handler", ["before", "after"])
async def test_an_apps_own_http_error_handler_wins(serve: Serve, own_handler: str) -> None:
    client = await serve(make_app(own_handler=own_handler))
    response = await client.get("/nope")
    assert (response.status_code, response.json()) == (404, {"mine": True})
    response = await client.get("/boom")
    assert (response.status_code, assert_json(response)["error"]) == (500, "internal_error")


async def test_the_id_field_can_be_named(serve: Serve) -> None:
    client = await serve(make_app(id_field="requestId"))
    body = assert_json(await client.get("/boom", headers={"x-request-id": "r-1"}))
    assert body == {"error": "internal_error", "message": body["message"], "requestId": "r-1"}
