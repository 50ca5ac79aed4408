"""``ConnectionBalance``: processes serving one listening socket take new connections least loaded first, then in
turn, and never strand a connection on a process that does not take it."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
import trio
from quart_trio import QuartTrio

from servicekit import ConnectionBalance, serve_app


def test_the_least_loaded_slot_may_accept_then_the_one_that_accepted_fewest(tmp_path: Path) -> None:
    table = tmp_path / "connections"
    ConnectionBalance.create(table, 3)
    a, b, c = (ConnectionBalance(table, i) for i in range(3))
    try:
        assert b.snapshot() == [(-1, 0)] * 3  # nobody accepts yet
        a.join()
        b.join()
        assert a.may_accept()
        assert b.may_accept()
        a.opened()
        assert not a.may_accept()
        assert b.may_accept()
        b.opened()
        a.closed()
        b.closed()
        assert a.snapshot()[:2] == [(0, 1), (0, 1)]
        a.opened()
        a.closed()
        assert not a.may_accept()
        assert b.may_accept()
        c.join()
        assert c.may_accept()
        assert not b.may_accept()
        ConnectionBalance.clear(table, 2)  # c exited: the others no longer wait for it
        assert b.may_accept()
        assert c.snapshot()[2][0] == -1
    finally:
        for each in (a, b, c):
            each.close()


def _named_app(name: str) -> QuartTrio:
    app = QuartTrio(f"balance-{name}")

    @app.get("/who")
    async def who() -> str:
        return name

    return app


@asynccontextmanager
async def _servers(tmp_path: Path, names: list[str], slots: int) -> AsyncIterator[tuple[str, Path]]:
    """``names`` servers in this process on one socket (each on its own descriptor of it, as worker processes
    would be) and a connection table of ``slots`` slots, the first ones theirs."""
    table = tmp_path / "connections"
    ConnectionBalance.create(table, slots)
    shared = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    shared.bind(("127.0.0.1", 0))
    port = shared.getsockname()[1]
    balances = [ConnectionBalance(table, i) for i in range(len(names))]
    shutdown = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            for name, balance in zip(names, balances, strict=True):
                await nursery.start(partial(
                    serve_app, _named_app(name), bind=f"fd://{os.dup(shared.fileno())}", drain_timeout=5,
                    name=name, shutdown=shutdown, signals=(), balance=balance, announce=False,
                ))
            yield f"http://127.0.0.1:{port}", table
            shutdown.set()
    finally:
        shared.close()
        for balance in balances:
            balance.close()


async def test_connections_opened_one_after_another_alternate_between_the_servers(tmp_path: Path) -> None:
    async with _servers(tmp_path, ["a", "b"], 2) as (url, table):
        clients = [httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=1)) for _ in range(6)]
        try:
            served = []
            for client in clients:  # each keeps its connection open
                answer = await client.get("/who")
                served.append(answer.text)
            # Each on its own connection again: still the server that accepted it.
            assert [(await client.get("/who")).text for client in clients] == served
            # Least connections first: after every new connection, the two hold as many or one apart.
            for opened in range(1, len(served) + 1):
                assert abs(served[:opened].count("a") - served[:opened].count("b")) <= 1, served
            view = ConnectionBalance(table, 0)
            try:
                assert view.snapshot() == [(3, 3), (3, 3)]
            finally:
                view.close()
        finally:
            for client in clients:
                await client.aclose()


async def test_a_connection_left_for_a_server_that_never_takes_it_is_taken_by_another(tmp_path: Path) -> None:
    # Slot 1 says "accepting, idle" but no server behind it (a worker that hangs, or died a moment ago): after
    # the fallback wait the one server there takes every connection all the same.
    async with _servers(tmp_path, ["a"], 2) as (url, table):
        phantom = ConnectionBalance(table, 1)
        phantom.join()
        clients = [httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=1)) for _ in range(3)]
        try:
            with trio.fail_after(10):
                assert [(await client.get("/who")).text for client in clients] == ["a", "a", "a"]
            assert phantom.snapshot() == [(3, 3), (0, 0)]
        finally:
            for client in clients:
                await client.aclose()
            phantom.close()


async def test_a_server_that_stops_leaves_the_table(tmp_path: Path) -> None:
    async with _servers(tmp_path, ["a", "b"], 2) as (url, table), httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/who")).status_code == 200
    view = ConnectionBalance(table, 0)
    try:
        assert [held for held, _ in view.snapshot()] == [-1, -1]
    finally:
        view.close()
