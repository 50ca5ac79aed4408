"""A guest's fetch inside a traced request carries the W3C traceparent of the host call (replacing the guest's)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from opentelemetry import trace

from tests._tracing import collect_spans

from ._servers import Req, Resp, Server
from .test_fetch import fetcher_for, scope

Serve = Callable[..., Awaitable[Server]]


async def _headers(request: Req) -> Resp:
    return Resp.json(200, {"headers": request.headers})


async def test_fetch_carries_the_current_span_as_traceparent(serve: Serve) -> None:
    server = await serve(_headers)
    fetcher, _ = fetcher_for(f"127.0.0.1:{server.port}")
    forged = ("traceparent", "00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    with collect_spans():
        with trace.get_tracer("test").start_as_current_span("host call") as span:
            response = await fetcher.fetch(scope(), "GET", f"{server.url}/", [forged], None)
        context = span.get_span_context()
    seen = [value for name, value in json.loads(response.body)["headers"] if name == "traceparent"]
    (value,) = seen
    assert value.startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")  # then the trace flags


async def test_outside_a_traced_request_the_guest_headers_pass_unchanged(serve: Serve) -> None:
    server = await serve(_headers)
    fetcher, _ = fetcher_for(f"127.0.0.1:{server.port}")
    forged = ("traceparent", "00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    response = await fetcher.fetch(scope(), "GET", f"{server.url}/", [forged], None)
    seen = [value for name, value in json.loads(response.body)["headers"] if name == "traceparent"]
    assert seen == [forged[1]]
