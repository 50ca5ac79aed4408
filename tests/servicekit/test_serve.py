"""``serve_app``: bound addresses through ``task_status``, a graceful drain on shutdown or a signal."""

from __future__ import annotations

import logging
import os
import signal
from functools import partial

import httpx
import pytest
import trio
from quart_trio import QuartTrio

from servicekit import serve_app


def _app(events: list[str]) -> QuartTrio:
    app = QuartTrio("servicekit_test")

    @app.before_serving
    async def _start() -> None:
        events.append("started")

    @app.after_serving
    async def _stop() -> None:
        events.append("stopped")

    @app.get("/")
    async def _index() -> str:
        return "ok"

    @app.get("/slow/<float:seconds>")
    async def _slow(seconds: float) -> str:
        await trio.sleep(seconds)
        return "done"

    return app


async def test_reports_the_bound_address_and_drains_requests_in_flight(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    events: list[str] = []
    shutdown = trio.Event()
    results: dict[str, object] = {}
    with trio.fail_after(20):
        # Connection: close, because Hypercorn's drain also waits (up to drain_timeout) for idle keep-alive
        # connections: the test is about the request in flight.
        async with httpx.AsyncClient(timeout=10, headers={"connection": "close"}) as client, \
                trio.open_nursery() as nursery:
            serving = partial(serve_app, _app(events), bind="127.0.0.1:0", drain_timeout=10, name="test",
                              shutdown=shutdown, signals=())
            binds: list[str] = await nursery.start(serving)
            url = binds[0]
            assert url.startswith("http://127.0.0.1:")
            assert not url.endswith(":0")
            assert events == ["started"]
            assert (await client.get(url)).text == "ok"

            async def slow() -> None:
                results["slow"] = (await client.get(f"{url}/slow/0.5")).text

            nursery.start_soon(slow)
            await trio.sleep(0.2)
            shutdown.set()
        # serve_app returned: the slow request finished first, then the app's shutdown hooks ran.
        assert results["slow"] == "done"
        assert events == ["started", "stopped"]
        await _assert_refused(url)
    messages = [r.getMessage() for r in caplog.records if r.name == "test"]
    assert messages == [f"test listening on {url}", "test stopped"]


async def test_the_drain_is_bounded_by_drain_timeout() -> None:
    events: list[str] = []
    shutdown = trio.Event()
    results: dict[str, object] = {}
    with trio.fail_after(20):
        async with httpx.AsyncClient(timeout=30) as client, trio.open_nursery() as nursery:
            binds = await nursery.start(partial(serve_app, _app(events), bind="127.0.0.1:0", drain_timeout=0.3,
                                                name="test", shutdown=shutdown, signals=()))

            async def stuck() -> None:
                try:
                    results["stuck"] = (await client.get(f"{binds[0]}/slow/60")).status_code
                except httpx.TransportError:
                    results["stuck"] = "cut"

            nursery.start_soon(stuck)
            await trio.sleep(0.2)
            started = trio.current_time()
            shutdown.set()
        assert trio.current_time() - started < 10
    assert results["stuck"] != 200
    assert events == ["started", "stopped"]


async def test_a_signal_starts_the_drain(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    events: list[str] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(serve_app, _app(events), bind="127.0.0.1:0", drain_timeout=1, name="test",
                                        signals=(signal.SIGUSR1,)))
            os.kill(os.getpid(), signal.SIGUSR1)
    assert events == ["started", "stopped"]
    assert "received SIGUSR1: draining" in [r.getMessage() for r in caplog.records]


async def test_cancelling_stops_at_once() -> None:
    events: list[str] = []
    with trio.fail_after(20):
        async with httpx.AsyncClient(timeout=60) as client:
            async with trio.open_nursery() as nursery:
                binds = await nursery.start(partial(serve_app, _app(events), bind="127.0.0.1:0", drain_timeout=30,
                                                    name="test", signals=()))
                nursery.start_soon(client.get, f"{binds[0]}/slow/60")
                await trio.sleep(0.2)
                started = trio.current_time()
                nursery.cancel_scope.cancel()
            assert trio.current_time() - started < 5
    await _assert_refused(binds[0])


async def _assert_refused(url: str) -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.TransportError):
            await client.get(url)
