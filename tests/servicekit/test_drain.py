"""``serve_app``'s drain on the wire: an idle service stops at once, a request in flight finishes with
``Connection: close``, a new request on an old keep-alive connection is refused at once with the JSON 503
``draining``, and the sockets listen only while the app is started."""

from __future__ import annotations

import json
from functools import partial

import pytest
import trio
from quart_trio import QuartTrio

from servicekit import DRAIN_RETRY_AFTER_S, DRAINING, serve_app
from tests._http1 import RawConnection, WireResponse
from tests._net import free_port

DRAIN_TIMEOUT_S = 30  # far beyond every bound asserted here: a drain that waits for it fails the test


def _app(events: list[str], *, started: trio.Event | None = None, slow_started: trio.Event | None = None) -> QuartTrio:
    app = QuartTrio("servicekit_drain_test")

    @app.before_serving
    async def _start() -> None:
        if started is not None:
            await started.wait()

    @app.after_serving
    async def _stop() -> None:
        events.append("after_serving")

    @app.get("/")
    async def _index() -> str:
        return "ok"

    @app.get("/slow/<float:seconds>")
    async def _slow(seconds: float) -> str:
        events.append("slow started")
        if slow_started is not None:
            slow_started.set()
        await trio.sleep(seconds)
        return "done"

    return app


async def _get(conn: RawConnection, path: str) -> WireResponse | None:
    assert await conn.send_head("GET", path, {})
    return await conn.read_response()


def _assert_draining(response: WireResponse | None) -> None:
    assert response is not None
    assert response.status == 503
    assert response.headers["content-type"] == "application/json"
    assert response.headers["retry-after"] == str(DRAIN_RETRY_AFTER_S)
    assert response.headers["connection"] == "close"
    body = json.loads(response.body)
    assert body["error"] == DRAINING
    assert "shutting down" in body["message"]


async def test_an_idle_service_stops_at_once_with_a_keep_alive_connection_open() -> None:
    events: list[str] = []
    shutdown = trio.Event()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve_app, _app(events), bind="127.0.0.1:0",
                                                drain_timeout=DRAIN_TIMEOUT_S, name="test", shutdown=shutdown,
                                                signals=()))
            idle = await RawConnection.open(binds[0])
            response = await _get(idle, "/")
            assert response is not None
            assert (response.status, response.body) == (200, b"ok")
            assert "connection" not in response.headers  # kept alive
            started = trio.current_time()
            shutdown.set()
        assert trio.current_time() - started < 1
        assert events == ["after_serving"]
        assert await idle.closed_by_server()
        await idle.aclose()
    with pytest.raises(OSError, match="all attempts to connect"):
        await RawConnection.open(binds[0])


async def test_in_flight_requests_finish_and_new_ones_are_refused_at_once() -> None:
    events: list[str] = []
    shutdown = trio.Event()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            slow_started = trio.Event()
            binds = await nursery.start(partial(serve_app, _app(events, slow_started=slow_started),
                                                bind="127.0.0.1:0", drain_timeout=DRAIN_TIMEOUT_S,
                                                name="test the service",
                                                shutdown=shutdown, signals=()))
            url = binds[0]
            old = await RawConnection.open(url)
            response = await _get(old, "/")
            assert response is not None
            assert response.status == 200
            busy = await RawConnection.open(url)
            assert await busy.send_head("GET", "/slow/1.5", {})
            await slow_started.wait()

            started = trio.current_time()
            shutdown.set()
            await trio.sleep(0.1)
            # A new request on a connection opened before the drain: refused at once, never started, closed.
            refused = await _get(old, "/slow/0")
            assert trio.current_time() - started < 1
            _assert_draining(refused)
            assert refused is not None
            assert "test the service is shutting down" in json.loads(refused.body)["message"]
            assert await old.closed_by_server()
            # Readiness flipped: a probe on a new connection says 503 too.
            probe = await RawConnection.open(url)
            _assert_draining(await _get(probe, "/readyz"))
            await probe.aclose()
            await old.aclose()
            assert events.count("slow started") == 1

            # The request in flight finishes, told that the connection closes after it.
            done = await busy.read_response()
            assert done is not None
            assert (done.status, done.body, done.headers["connection"]) == (200, b"done", "close")
            assert await busy.closed_by_server()
            await busy.aclose()
            finished = trio.current_time()
        # serve_app returned soon after the last request finished, not after the drain timeout.
        assert trio.current_time() - finished < 1
        assert events[-1] == "after_serving"
    with pytest.raises(OSError, match="all attempts to connect"):
        await RawConnection.open(url)


async def test_the_sockets_listen_only_while_the_app_is_started() -> None:
    events: list[str] = []
    started = trio.Event()
    shutdown = trio.Event()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = _app(events, started=started)
    refused_at_stop: list[bool] = []

    @app.after_serving
    async def _connect_while_stopping() -> None:
        try:
            conn = await RawConnection.open(url)
        except OSError:
            refused_at_stop.append(True)
        else:
            await conn.aclose()
            refused_at_stop.append(False)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(serve_app, app, bind=f"127.0.0.1:{port}", drain_timeout=DRAIN_TIMEOUT_S,
                                       name="test", shutdown=shutdown, signals=()))
            await trio.sleep(0.2)
            # Starting up: refused at once, so a caller tries another instance instead of waiting.
            with pytest.raises(OSError, match="all attempts to connect"):
                await RawConnection.open(url)
            started.set()
            while True:
                try:
                    conn = await RawConnection.open(url)
                    break
                except OSError:
                    await trio.sleep(0.02)
            response = await _get(conn, "/")
            assert response is not None
            assert response.status == 200
            await conn.aclose()
            shutdown.set()
    # While the app's shutdown hooks run, a late connection is refused, not left in the backlog.
    assert refused_at_stop == [True]
