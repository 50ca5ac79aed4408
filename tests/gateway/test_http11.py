"""The runner hop's HTTP/1.1 client: kept-alive connections, stale ones dropped, caps and failure kinds."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import trio

from gateway_quart._http11 import ConnectFailed, Origin, Pool, ResponseTooLarge, TransportFailed


@dataclass
class RawServer:
    """A TCP server answering each request with ``answer(index)``; ``close_after`` closes after answering."""

    answer: Callable[[int], bytes]
    close_after: bool = False
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)

    async def handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        buffer = b""
        async with stream:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(buffer) < length:
                    buffer += await stream.receive_some(65536)
                self.requests.append(buffer[:length])
                buffer = buffer[length:]
                await stream.send_all(self.answer(len(self.requests)))
                if self.close_after:
                    return


def ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nx-n: 1\r\nx-n: 2\r\n\r\n%s" % (len(body), body)


Start = Callable[[RawServer], Awaitable[Origin]]


@pytest.fixture
def start(nursery: trio.Nursery) -> Start:
    async def start(server: RawServer) -> Origin:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        return Origin("127.0.0.1", port, f"127.0.0.1:{port}")

    return start


async def test_one_connection_serves_request_after_request(start: Start) -> None:
    server = RawServer(lambda n: ok(b"answer %d" % n))
    origin = await start(server)
    pool = Pool(idle_s=30, connect_timeout_s=5)
    answers = [await pool.request(origin, b"POST", b"/v1/execute", [], b"body %d" % i, max_response_bytes=1024)
               for i in range(3)]
    await pool.aclose()
    assert [a.body for a in answers] == [b"answer 1", b"answer 2", b"answer 3"]
    assert answers[0].status == 200
    assert answers[0].headers["x-n"] == "1, 2"
    assert server.requests == [b"body 0", b"body 1", b"body 2"]
    assert server.connections == 1


async def test_a_connection_the_runner_closed_is_not_reused(start: Start) -> None:
    server = RawServer(lambda n: ok(b"answer %d" % n), close_after=True)  # closes without saying so
    origin = await start(server)
    pool = Pool(idle_s=30, connect_timeout_s=5)
    first = await pool.request(origin, b"POST", b"/", [], b"a", max_response_bytes=1024)
    await trio.sleep(0.05)  # let the close reach the client
    second = await pool.request(origin, b"POST", b"/", [], b"b", max_response_bytes=1024)
    await pool.aclose()
    assert (first.body, second.body) == (b"answer 1", b"answer 2")
    assert server.connections == 2


async def test_an_idle_connection_past_its_time_is_not_reused(start: Start) -> None:
    server = RawServer(lambda n: ok(b"x"))
    origin = await start(server)
    pool = Pool(idle_s=0.01, connect_timeout_s=5)
    await pool.request(origin, b"POST", b"/", [], b"a", max_response_bytes=1024)
    await trio.sleep(0.05)
    await pool.request(origin, b"POST", b"/", [], b"b", max_response_bytes=1024)
    await pool.aclose()
    assert server.connections == 2


async def test_an_answer_over_the_cap_is_refused_and_its_connection_dropped(start: Start) -> None:
    server = RawServer(lambda n: ok(b"y" * 2000 if n == 1 else b"small"))
    origin = await start(server)
    pool = Pool(idle_s=30, connect_timeout_s=5)
    with pytest.raises(ResponseTooLarge):
        await pool.request(origin, b"POST", b"/", [], b"a", max_response_bytes=1000)
    after = await pool.request(origin, b"POST", b"/", [], b"b", max_response_bytes=1000)
    await pool.aclose()
    assert after.body == b"small"
    assert server.connections == 2


async def test_a_closed_connection_without_an_answer_is_a_transport_failure(start: Start) -> None:
    server = RawServer(lambda n: b"")  # reads the request, answers nothing, closes
    server.close_after = True
    origin = await start(server)
    pool = Pool(idle_s=30, connect_timeout_s=5)
    with pytest.raises(TransportFailed):
        await pool.request(origin, b"POST", b"/", [], b"a", max_response_bytes=1000)
    await pool.aclose()
    assert server.requests == [b"a"]


async def test_nobody_listening_is_a_connect_failure() -> None:
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        pool = Pool(idle_s=30, connect_timeout_s=5)
        with pytest.raises(ConnectFailed):
            await pool.request(Origin("127.0.0.1", port, "x"), b"POST", b"/", [], b"a", max_response_bytes=10)


async def test_an_injected_httpx_transport_still_serves_the_hop() -> None:
    """Tests (and https runners) use httpx: the same answer comes back through it."""
    import base64
    import json

    import httpx

    import contract
    from gateway_quart import RunnerClient

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        envelope = {"status": 201, "headers": {"x-a": "b"}, "body_b64": base64.b64encode(b"made").decode(),
                    "error": None}
        return httpx.Response(200, json=envelope, headers={"server-timing": "guest;dur=1.0"})

    client = RunnerClient(["http://runner.test"], service_token="tok", timeout_ms=5000, attempts=1,
                          transport=httpx.MockTransport(handler))
    doc = {"context": {"tenant_id": "t", "extension_id": "e", "content_hash": "sha256:" + "a" * 64},
           "http": {"method": "GET", "path": "/x", "query": {}, "headers": {}}, "limits": {}, "providers": []}
    answer = await client.execute(contract.decode_execute_request(doc, max_body_bytes=1024), idempotency_key="k",
                                  retryable=False)
    await client.aclose()
    assert (answer.result.status, answer.result.body, answer.timing) == (201, b"made", "guest;dur=1.0")
    assert seen[0].url == "http://runner.test/v1/execute"
    assert seen[0].headers["authorization"] == "Bearer tok"
    assert seen[0].headers["x-idempotency-key"] == "k"
    assert json.loads(seen[0].content)["context"]["tenant_id"] == "t"


async def test_requests_past_the_connection_cap_wait_for_a_connection(start: Start) -> None:
    server = RawServer(lambda n: ok(b"answer"))
    origin = await start(server)
    pool = Pool(idle_s=30, connect_timeout_s=5, max_connections=2)
    answers: list[bytes] = []

    async def call(i: int) -> None:
        answers.append((await pool.request(origin, b"POST", b"/", [], b"%d" % i, max_response_bytes=64)).body)

    async with trio.open_nursery() as nursery:
        for i in range(6):
            nursery.start_soon(call, i)
    await pool.aclose()
    assert answers == [b"answer"] * 6
    assert server.connections == 2
