"""``extctl tail`` against the blueprint served by Hypercorn, with events in a real redis-server."""

from __future__ import annotations

import argparse
import io
import json

import pytest
import trio

from extctl import CommandFailed, UsageError
from extctl._commands.tail import add_parser, format_event, stream_url, tail
from tests._redis import RedisServer

from ._helpers import TENANT_A, add, key, serve_debug

EXT = "com.acme.cli"


async def test_tail_prints_replayed_and_live_events(nursery: trio.Nursery, redis_server: RedisServer) -> None:
    base = await serve_debug(nursery, redis_server.url)
    k = key(TENANT_A, EXT)
    await add(redis_server.url, k, ts=1_700_000_000_123, level="warn", stream="stderr", request="r-1", message="first")
    out, err = io.StringIO(), io.StringIO()
    async with trio.open_nursery() as inner:

        async def run() -> None:
            assert await tail(base, EXT, "tok-a", out=out, err=err, limit=2) == 2

        inner.start_soon(run)
        with trio.fail_after(5):
            while not out.getvalue():  # noqa: ASYNC110 - waiting for the replayed event to be printed
                await trio.sleep(0.01)
        await add(redis_server.url, k, level="info", stream="stdout", message="second")
    first, second = out.getvalue().splitlines()
    assert first == "2023-11-14T22:13:20.123Z WARN  stderr r-1 first"
    assert second.endswith(" INFO  stdout - second")
    assert err.getvalue() == ""


async def test_tail_filters_and_json_lines(nursery: trio.Nursery, redis_server: RedisServer) -> None:
    base = await serve_debug(nursery, redis_server.url)
    k = key(TENANT_A, f"{EXT}.json")
    await add(redis_server.url, k, level="info", request="r-1", message="too low")
    await add(redis_server.url, k, level="error", request="r-2", message="other request")
    await add(redis_server.url, k, level="error", stream="stderr", request="r-1", tenant=TENANT_A, message="wanted")
    out = io.StringIO()
    printed = await tail(
        base, f"{EXT}.json", "tok-a", request_id="r-1", level="warn", out=out, json_lines=True, limit=1
    )
    assert printed == 1
    event = json.loads(out.getvalue())
    assert (event["message"], event["level"], event["requestId"], event["tenantId"]) == (
        "wanted",
        "error",
        "r-1",
        TENANT_A,
    )


@pytest.mark.parametrize(("token", "code"), [("tok-unknown", "unauthorized"), ("tok-no-read", "forbidden")])
async def test_tail_reports_refusals(nursery: trio.Nursery, redis_server: RedisServer, token: str, code: str) -> None:
    base = await serve_debug(nursery, redis_server.url)
    with pytest.raises(CommandFailed) as failed:
        await tail(base, EXT, token, out=io.StringIO(), limit=1)
    assert failed.value.code == code


async def test_tail_reports_an_unreachable_gateway(nursery: trio.Nursery) -> None:
    base = await serve_debug(nursery, None)
    with pytest.raises(CommandFailed) as failed:
        await tail(base, EXT, "tok-a", out=io.StringIO(), limit=1)
    assert failed.value.code == "debug_stream_unavailable"
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CommandFailed) as failed:
        await tail(f"http://127.0.0.1:{port}", EXT, "tok-a", out=io.StringIO(), limit=1)
    assert failed.value.code == "connect_error"


async def test_the_command_line(
    nursery: trio.Nursery,
    redis_server: RedisServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = await serve_debug(nursery, redis_server.url)
    await add(redis_server.url, key(TENANT_A, f"{EXT}.argv"), message="from the command line")
    parser = argparse.ArgumentParser(prog="extctl")
    add_parser(parser.add_subparsers(dest="command", required=True))
    monkeypatch.setenv("EXTCTL_GATEWAY", base)
    monkeypatch.delenv("EXTCTL_TOKEN", raising=False)
    no_token = parser.parse_args(["tail", f"{EXT}.argv"])
    with pytest.raises(UsageError):
        no_token.run(no_token)
    monkeypatch.setenv("EXTCTL_TOKEN", "tok-a")
    args = parser.parse_args(["tail", f"{EXT}.argv", "--limit", "1", "--level", "info"])
    # The command runs its own trio.run, as from a shell: here in a worker thread beside the server's loop.
    assert await trio.to_thread.run_sync(args.run, args) == 0
    assert capsys.readouterr().out.rstrip().endswith("INFO  log    - from the command line")


def test_urls_and_formatting() -> None:
    assert stream_url("https://gw.example/base/", "Com.X", level="warn") == (
        "wss://gw.example/base/api/ext-debug/stream?extensionId=Com.X&level=warn"
    )
    assert stream_url("http://127.0.0.1:8080", "x", request_id="r 1", stream="stdout,stderr") == (
        "ws://127.0.0.1:8080/api/ext-debug/stream?extensionId=x&requestId=r+1&stream=stdout%2Cstderr"
    )
    with pytest.raises(UsageError):
        stream_url("ftp://gw.example", "x")
    line = format_event({"ts": "bad", "level": "error", "stream": "log", "message": "m", "truncated": True})
    assert line == "bad ERROR log    - m …[truncated]"
