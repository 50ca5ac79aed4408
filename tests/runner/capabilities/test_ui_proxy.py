from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest
import trio

from runner_trio.capabilities import HostCallError
from runner_trio.capabilities.ui_proxy import UiProxyClient
from runner_trio.engine import HostScope, HostUser

from ._servers import Req, Resp, Server

Serve = Callable[..., Awaitable[Server]]


def scope(timeout: float = 30.0) -> HostScope:
    return HostScope(
        "tenant-1",
        "ext-1",
        install_id="inst-1",
        request_id="req-9",
        deadline=trio.current_time() + timeout,
        version_id="v3",
        user=HostUser("user-7", "internal", "u@example.com"),
    )


async def upstream(request: Req) -> Resp:
    if request.path.endswith("/missing"):
        return Resp.json(404, {"error": "nope"})
    if request.path.endswith("/forbidden"):
        return Resp.json(403, {})
    if request.path.endswith("/limited"):
        return Resp.json(429, {})
    if request.path.endswith("/invalid"):
        return Resp.json(422, {})
    if request.path.endswith("/boom"):
        return Resp.json(502, {})
    if request.path.endswith("/moved"):
        return Resp(301, [("location", "/elsewhere")])
    if request.path.endswith("/big"):
        return Resp(200, [], b"z" * 2048)
    if request.path.endswith("/slow"):
        await trio.sleep(30)
    echo = {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "body": request.body.decode(),
        "headers": dict(request.headers),
    }
    return Resp.json(200, echo)


async def test_extension_routes_get_and_post(serve: Serve) -> None:
    server = await serve(upstream)
    async with UiProxyClient(server.url + "/proxy/", "proxy-key") as client:
        answer = json.loads(await client.call_route(scope(), "/items/42?verbose=1", None))
        assert (answer["method"], answer["path"], answer["query"]) == ("GET", "/proxy/ext-1/items/42", "verbose=1")
        headers = answer["headers"]
        assert headers["authorization"] == "Bearer proxy-key"
        assert (headers["x-alga-tenant"], headers["x-alga-extension"], headers["x-request-id"]) == (
            "tenant-1",
            "ext-1",
            "req-9",
        )
        assert (headers["x-ext-install-id"], headers["x-ext-version-id"]) == ("inst-1", "v3")
        assert (headers["x-user-id"], headers["x-user-email"]) == ("user-7", "u@example.com")

        answer = json.loads(await client.call_route(scope(), "items", b'{"a":1}', api_key="k-from-secrets"))
        assert (answer["method"], answer["path"], answer["body"]) == ("POST", "/proxy/ext-1/items", '{"a":1}')
        assert answer["headers"]["content-type"] == "application/json"
        assert answer["headers"]["x-api-key"] == "k-from-secrets"

        answer = json.loads(await client.call_route(scope(), "/api/v1/tickets//open/", None))
        assert answer["path"] == "/proxy/api/v1/tickets/open/"  # platform routes as is; empty segments dropped


@pytest.mark.parametrize(
    "route",
    [
        "",
        "   ",
        "/a/../b",
        "..",
        "./x",
        "/a/%2e%2E/b",
        "/a/%2E/b",
        "/a/%2fetc",
        "/a/%5cx",
        "/a\\b",
        "/a#frag",
        "/a\nb",
        "/a\x00",
    ],
)
async def test_bad_routes_never_leave_the_runner(serve: Serve, route: str) -> None:
    server = await serve(upstream)
    client = UiProxyClient(server.url)
    with pytest.raises(HostCallError) as info:
        await client.call_route(scope(), route, None)
    assert info.value.variant == "bad-request"
    assert server.seen == []
    await client.aclose()


@pytest.mark.parametrize(
    ("route", "variant"),
    [
        ("/missing", "route-not-found"),
        ("/forbidden", "denied"),
        ("/limited", "denied"),
        ("/invalid", "bad-request"),
        ("/boom", "internal"),
        ("/moved", "internal"),
        ("/big", "internal"),
    ],
)
async def test_error_mapping(serve: Serve, route: str, variant: str) -> None:
    server = await serve(upstream)
    client = UiProxyClient(server.url, max_response_bytes=1024)
    with pytest.raises(HostCallError) as info:
        await client.call_route(scope(), route, None)
    assert info.value.variant == variant
    await client.aclose()


async def test_timeout_is_bounded_by_the_deadline(serve: Serve) -> None:
    server = await serve(upstream)
    client = UiProxyClient(server.url, timeout=10.0)
    started = trio.current_time()
    with pytest.raises(HostCallError) as info:
        await client.call_route(scope(timeout=0.3), "/slow", None)
    assert info.value.variant == "internal"
    assert trio.current_time() - started < 5.0
    await client.aclose()


async def test_unreachable_upstream_is_internal() -> None:
    client = UiProxyClient("http://127.0.0.1:1")
    with pytest.raises(HostCallError) as info:
        await client.call_route(scope(), "/x", None)
    assert info.value.variant == "internal"
    await client.aclose()


async def test_payload_cap(serve: Serve) -> None:
    server = await serve(upstream)
    client = UiProxyClient(server.url, max_payload_bytes=4)
    with pytest.raises(HostCallError) as info:
        await client.call_route(scope(), "/x", b"12345")
    assert info.value.variant == "bad-request"
    assert server.seen == []
    await client.aclose()


def test_extension_id_is_one_segment() -> None:
    client = UiProxyClient("http://proxy.internal/base")
    odd = HostScope("t", "../admin")
    assert client.route_url(odd, "x") == "http://proxy.internal/base/%2E%2E%2Fadmin/x"
