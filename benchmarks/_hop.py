"""The gateway's runner hop alone: the lean HTTP/1.1 client against httpx, in this process.

A canned ``/v1/execute`` answer is served by a minimal trio TCP server in this process, so what differs between
the sides is only the client: ``gateway_quart.RunnerClient`` as the gateway builds it (h11 on kept-alive trio
streams) and the same ``RunnerClient`` given an httpx transport (the path ``https://`` runners take). The sides
alternate in rounds; the figures are wall time and this thread's CPU time per call (the canned server's share is
the same on both sides).
"""

from __future__ import annotations

import base64
import functools
import json
import time

import httpx
import trio

from contract import decode_execute_request
from gateway_quart import RunnerClient

from ._common import SERVICE_TOKEN, Row, median, pick

_ENVELOPE = json.dumps({"status": 200, "headers": {"content-type": "application/json"},
                        "body_b64": base64.b64encode(b'{"greeting": "hi"}').decode(), "error": None}).encode()
_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(_ENVELOPE), _ENVELOPE)
_DOC = {"context": {"tenant_id": "bench", "extension_id": "hello", "content_hash": "sha256:" + "a" * 64,
                    "install_id": "i", "request_id": "r", "config": {"mode": "bench"}},
        "http": {"method": "GET", "path": "/hello", "query": {"name": "gw"}, "headers": {"accept": "*/*"}},
        "limits": {"timeout_ms": 30_000}, "providers": []}


async def _canned(stream: trio.SocketStream) -> None:
    buffer = b""
    async with stream:
        while True:
            while b"\r\n\r\n" not in buffer:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buffer += data
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            while len(buffer) < length:
                buffer += await stream.receive_some(65536)
            buffer = buffer[length:]
            await stream.send_all(_ANSWER)


async def hop_rows(quick: bool) -> list[Row]:
    calls, rounds = pick(quick, 300, 1000), pick(quick, 2, 4)
    request = decode_execute_request(_DOC, max_body_bytes=1024)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, _canned, 0, host="127.0.0.1"))
        url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
        sides = {
            "lean": RunnerClient([url], service_token=SERVICE_TOKEN, timeout_ms=30_000, attempts=2),
            "httpx": RunnerClient([url], service_token=SERVICE_TOKEN, timeout_ms=30_000, attempts=2,
                                  transport=httpx.AsyncHTTPTransport()),
        }
        wall: dict[str, list[float]] = {name: [] for name in sides}
        cpu: dict[str, list[float]] = {name: [] for name in sides}
        for client in sides.values():
            for _ in range(50):
                await client.execute(request, idempotency_key=None, retryable=True)
        for _ in range(rounds):
            for name, client in sides.items():
                t0, c0 = time.perf_counter(), time.thread_time()
                for _ in range(calls):
                    await client.execute(request, idempotency_key=None, retryable=True)
                wall[name].append((time.perf_counter() - t0) / calls)
                cpu[name].append((time.thread_time() - c0) / calls)
        for client in sides.values():
            await client.aclose()
        nursery.cancel_scope.cancel()
    saved = median(cpu["httpx"]) - median(cpu["lean"])
    return [Row(
        "gateway",
        f"runner hop alone, in 1 process against a canned answer: lean h11 client vs httpx ({rounds} rounds of "
        f"{calls} calls; CPU of this thread incl. the canned server)",
        f"lean {median(wall['lean']) * 1e3:.3f} ms, CPU {median(cpu['lean']) * 1e3:.3f} ms per call",
        f"httpx {median(wall['httpx']) * 1e3:.3f} ms, CPU {median(cpu['httpx']) * 1e3:.3f} ms per call",
        f"-{saved * 1e3:.2f} ms CPU per call",
    )]
