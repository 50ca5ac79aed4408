"""HTTP/1.1 on the wire against a real runner: early answers close their connection, ``Connection: close``
is honoured, and a kept-alive connection keeps serving (see tests/gateway/test_connections.py)."""

from __future__ import annotations

from tests._http1 import RawConnection, assert_early_answer_closes
from tests.runner.http.conftest import TOKEN, RunnerHandle

BODY = b'{"context": {}}' + b" " * 5


async def test_an_unauthenticated_execute_closes_its_connection(runner: RunnerHandle) -> None:
    await assert_early_answer_closes(runner.url, "/v1/execute", {}, 401, BODY)


async def test_an_oversized_execute_closes_its_connection(runner: RunnerHandle) -> None:
    # Answered from the announced length alone: the body is never read.
    routing = {"Authorization": f"Bearer {TOKEN}", "x-alga-tenant": "t", "x-alga-extension": "e"}
    await assert_early_answer_closes(runner.url, "/v1/execute", routing, 413, BODY, length=1 << 30)


async def test_an_execute_refused_before_its_body_closes_its_connection(runner: RunnerHandle) -> None:
    # The contract's structured refusals travel in a 200: what closes the connection is the unread body.
    conn = await RawConnection.open(runner.url)
    try:
        head = {"Authorization": f"Bearer {TOKEN}", "Content-Length": str(len(BODY))}  # no routing headers
        assert await conn.send_head("POST", "/v1/execute", head)
        response = await conn.read_response()
        assert response is not None
        assert response.status == 200
        assert b"missing_routing_headers" in response.body
        assert response.headers.get("connection") == "close"
        if await conn.send(BODY):
            await conn.send_head("GET", "/healthz", {})
        assert await conn.closed_by_server()
    finally:
        await conn.aclose()


async def test_connection_close_from_the_client_is_honoured(runner: RunnerHandle) -> None:
    conn = await RawConnection.open(runner.url)
    try:
        assert await conn.send_head("GET", "/healthz", {"Connection": "close"})
        response = await conn.read_response()
        assert response is not None
        assert response.status == 200
        assert await conn.closed_by_server()
    finally:
        await conn.aclose()


async def test_a_kept_alive_connection_serves_request_after_request(runner: RunnerHandle) -> None:
    conn = await RawConnection.open(runner.url)
    try:
        for _ in range(20):
            assert await conn.send_head("GET", "/healthz", {})
            response = await conn.read_response()
            assert response is not None
            assert response.status == 200
    finally:
        await conn.aclose()
