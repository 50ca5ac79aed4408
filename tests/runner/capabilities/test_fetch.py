from __future__ import annotations

import ipaddress
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest
import trio

from runner_trio.capabilities import HostCallError
from runner_trio.capabilities.http import EgressPolicy, GuestFetcher, IPAddress, is_public_address
from runner_trio.engine import HostScope

from ._servers import Req, Resp, Server, self_signed

Serve = Callable[..., Awaitable[Server]]


def scope(timeout: float = 10.0) -> HostScope:
    return HostScope(
        "tenant-a", "ext-1", install_id="inst-1", request_id="req-1", deadline=trio.current_time() + timeout
    )


async def echo(request: Req) -> Resp:
    data = {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": request.headers,
        "body": request.body.decode(),
    }
    return Resp.json(200, data)


def fetcher_for(*entries: str, **kwargs: object) -> tuple[GuestFetcher, list[str]]:
    denied: list[str] = []
    fetcher = GuestFetcher(EgressPolicy.parse(list(entries)), on_denied=denied.append, **kwargs)  # type: ignore[arg-type]
    return fetcher, denied


class PinnedResolver:
    """Answers fixed addresses for names, and counts the questions."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[IPAddress]:
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        return [ipaddress.ip_address(a) for a in self.table[host]]


async def test_fetch_allowed_by_explicit_ip_entry(serve: Serve) -> None:
    server = await serve(echo)
    fetcher, denied = fetcher_for(f"127.0.0.1:{server.port}")
    headers = [
        ("X-Keep", "yes"),
        ("Host", "evil.example"),
        ("Connection", "close, X-Drop"),
        ("X-Drop", "named by Connection"),
        ("Proxy-Authorization", "Basic Zm9v"),
        ("Content-Length", "999"),
    ]
    response = await fetcher.fetch(scope(), "post", f"{server.url}/p/a?x=1", headers, b"hello")
    assert response.status == 200
    seen = json.loads(response.body)
    assert seen["method"] == "POST"
    assert (seen["path"], seen["query"], seen["body"]) == ("/p/a", "x=1", "hello")
    names = {name for name, _ in seen["headers"]}
    assert dict(seen["headers"])["host"] == f"127.0.0.1:{server.port}"
    assert dict(seen["headers"])["x-keep"] == "yes"
    assert dict(seen["headers"])["content-length"] == "5"
    assert not names & {"x-drop", "proxy-authorization", "connection"}
    assert "user-agent" in names
    assert ("content-type", "application/json") in response.headers
    assert denied == []
    assert fetcher.statistics().requests == 1


async def test_denied_host_is_refused_before_dns() -> None:
    resolver = PinnedResolver({})
    fetcher, denied = fetcher_for("api.example.com", resolver=resolver)
    with pytest.raises(HostCallError) as info:
        await fetcher.fetch(scope(), "GET", "https://other.example.com/", [], None)
    assert info.value.variant == "not-allowed"
    assert denied == ["host"]
    assert resolver.calls == []
    assert fetcher.statistics().denied == {"host": 1}


async def test_empty_allowlist_denies(serve: Serve) -> None:
    server = await serve(echo)
    fetcher, denied = fetcher_for()
    with pytest.raises(HostCallError) as info:
        await fetcher.fetch(scope(), "GET", server.url, [], None)
    assert info.value.variant == "not-allowed"
    assert denied == ["empty-allowlist"]
    assert server.seen == []


async def test_name_resolving_to_loopback_is_refused_unless_the_address_is_named(serve: Serve) -> None:
    server = await serve(echo)
    fetcher, denied = fetcher_for(f"localhost:{server.port}")  # real DNS: localhost -> 127.0.0.1 / ::1
    with pytest.raises(HostCallError) as info:
        await fetcher.fetch(scope(), "GET", f"http://localhost:{server.port}/", [], None)
    assert info.value.variant == "not-allowed"
    assert denied == ["address"]
    assert server.seen == []

    allowed, _ = fetcher_for(f"localhost:{server.port}", f"127.0.0.1:{server.port}")
    response = await allowed.fetch(scope(), "GET", f"http://localhost:{server.port}/ok", [], None)
    assert response.status == 200
    assert dict(json.loads(response.body)["headers"])["host"] == f"localhost:{server.port}"


async def test_metadata_and_private_answers_are_refused() -> None:
    resolver = PinnedResolver(
        {"meta.test": ["169.254.169.254"], "mixed.test": ["10.0.0.1", "fd00::1", "::ffff:127.0.0.1"]}
    )
    fetcher, denied = fetcher_for("meta.test", "mixed.test", resolver=resolver)
    for url in ("http://meta.test/latest/meta-data/", "http://mixed.test/"):
        with pytest.raises(HostCallError) as info:
            await fetcher.fetch(scope(), "GET", url, [], None)
        assert info.value.variant == "not-allowed"
    assert denied == ["address", "address"]


async def test_connection_goes_to_the_vetted_address_and_keeps_the_name(serve: Serve) -> None:
    server = await serve(echo)
    resolver = PinnedResolver({"service.test": ["127.0.0.1"]})
    fetcher, _ = fetcher_for(f"service.test:{server.port}", f"127.0.0.1:{server.port}", resolver=resolver)
    response = await fetcher.fetch(scope(), "GET", f"http://service.test:{server.port}/x", [], None)
    assert response.status == 200
    assert dict(json.loads(response.body)["headers"])["host"] == f"service.test:{server.port}"
    assert resolver.calls == ["service.test"]  # resolved once, by us; httpx never saw the name


async def test_unresolvable_name_is_a_transport_error() -> None:
    fetcher, denied = fetcher_for("nowhere.test", resolver=PinnedResolver({}))
    with pytest.raises(HostCallError) as info:
        await fetcher.fetch(scope(), "GET", "http://nowhere.test/", [], None)
    assert info.value.variant == "transport"
    assert denied == []


async def test_https_pins_the_address_but_verifies_the_name(serve: Serve, tmp_path: Path) -> None:
    certfile, keyfile, pem = self_signed(tmp_path, "service.test")
    server = await serve(echo, certfile=certfile, keyfile=keyfile)
    trust = ssl.create_default_context(cadata=pem)
    resolver = PinnedResolver({"service.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    fetcher, _ = fetcher_for(
        f"service.test:{server.port}",
        f"other.test:{server.port}",
        f"127.0.0.1:{server.port}",
        resolver=resolver,
        ssl_context=trust,
    )
    response = await fetcher.fetch(scope(), "GET", f"https://service.test:{server.port}/tls", [], None)
    assert response.status == 200
    assert json.loads(response.body)["path"] == "/tls"
    # Same address, another name: the certificate does not cover it, so the handshake must fail.
    with pytest.raises(HostCallError) as info:
        await fetcher.fetch(scope(), "GET", f"https://other.test:{server.port}/tls", [], None)
    assert info.value.variant == "transport"


async def test_redirect_is_returned_not_followed(serve: Serve) -> None:
    async def redirect(request: Req) -> Resp:
        return Resp(302, [("location", "http://denied.example/steal")], b"")

    server = await serve(redirect)
    fetcher, denied = fetcher_for(f"127.0.0.1:{server.port}")
    response = await fetcher.fetch(scope(), "GET", f"{server.url}/start", [], None)
    assert response.status == 302
    assert ("location", "http://denied.example/steal") in response.headers
    assert len(server.seen) == 1
    assert denied == []


async def test_oversized_response_is_refused(serve: Serve) -> None:
    async def big(request: Req) -> Resp:
        if request.path == "/declared":
            return Resp(200, [], b"x" * 5000)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"y" * 500

        return Resp(200, [], chunks())  # chunked: no content-length to trust, so the stream is counted

    server = await serve(big)
    fetcher, _ = fetcher_for(f"127.0.0.1:{server.port}", max_response_bytes=4096)
    for path in ("/declared", "/streamed"):
        with pytest.raises(HostCallError) as info:
            await fetcher.fetch(scope(), "GET", f"{server.url}{path}", [], None)
        assert info.value.variant == "transport"
    small, _ = fetcher_for(f"127.0.0.1:{server.port}", max_response_bytes=5000)
    assert len((await small.fetch(scope(), "GET", f"{server.url}/streamed", [], None)).body) == 5000


async def test_slow_upstream_is_cut_at_the_invocation_deadline(serve: Serve) -> None:
    async def slow(request: Req) -> Resp:
        await trio.sleep(30)
        return Resp(200)

    server = await serve(slow)
    fetcher, _ = fetcher_for(f"127.0.0.1:{server.port}")
    started = trio.current_time()
    with pytest.raises(HostCallError) as info:
        await fetcher.fetch(scope(timeout=0.5), "GET", server.url, [], None)
    assert info.value.variant == "transport"
    assert trio.current_time() - started < 5.0  # generous: the point is "not 30 s"

    expired = HostScope("t", "e", deadline=trio.current_time() - 1)
    with pytest.raises(HostCallError) as info:
        await fetcher.fetch(expired, "GET", server.url, [], None)
    assert info.value.variant == "transport"


async def test_request_count_cap_per_invocation(serve: Serve) -> None:
    server = await serve(echo)
    fetcher, denied = fetcher_for(f"127.0.0.1:{server.port}", max_requests_per_invocation=2)
    invocation = scope()
    for _ in range(2):
        assert (await fetcher.fetch(invocation, "GET", server.url, [], None)).status == 200
    with pytest.raises(HostCallError) as info:
        await fetcher.fetch(invocation, "GET", server.url, [], None)
    assert info.value.variant == "not-allowed"
    assert denied == ["request-cap"]
    assert len(server.seen) == 2
    assert (await fetcher.fetch(scope(), "GET", server.url, [], None)).status == 200  # a new invocation


async def test_request_size_caps(serve: Serve) -> None:
    server = await serve(echo)
    fetcher, denied = fetcher_for(f"127.0.0.1:{server.port}", max_request_bytes=10, max_request_header_bytes=100)
    with pytest.raises(HostCallError) as info:
        await fetcher.fetch(scope(), "POST", server.url, [], b"x" * 11)
    assert info.value.variant == "not-allowed"
    with pytest.raises(HostCallError) as info:
        await fetcher.fetch(scope(), "GET", server.url, [("x-big", "v" * 200)], None)
    assert info.value.variant == "not-allowed"
    assert denied == ["request-too-large", "request-too-large"]
    assert server.seen == []


@pytest.mark.parametrize(
    ("method", "url", "headers"),
    [
        ("GET", "not a url at all", []),
        ("GET", "ftp://127.0.0.1/", []),
        ("GET", "/relative/only", []),
        ("GE T", "http://127.0.0.1:1/", []),
        ("GET", "http://127.0.0.1:1/", [("bad name", "v")]),
        ("GET", "http://127.0.0.1:1/", [("x-inject", "a\r\nHost: evil")]),
    ],
)
async def test_malformed_requests_are_invalid_url(method: str, url: str, headers: list[tuple[str, str]]) -> None:
    fetcher, denied = fetcher_for("127.0.0.1:1")
    with pytest.raises(HostCallError) as info:
        await fetcher.fetch(scope(), method, url, headers, None)
    assert info.value.variant == "invalid-url"
    assert denied == []


async def test_userinfo_is_not_allowed() -> None:
    fetcher, denied = fetcher_for("api.example.com")
    with pytest.raises(HostCallError) as info:
        await fetcher.fetch(scope(), "GET", "http://me:pw@api.example.com/", [], None)
    assert info.value.variant == "not-allowed"
    assert denied == ["userinfo"]


async def test_connection_refused_is_transport() -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        fetcher, _ = fetcher_for(f"127.0.0.1:{port}")
        with pytest.raises(HostCallError) as info:
            await fetcher.fetch(scope(), "GET", f"http://127.0.0.1:{port}/", [], None)
    assert info.value.variant == "transport"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("239.255.255.250", False),
        ("255.255.255.255", False),
        ("240.0.0.1", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fd00:ec2::254", False),
        ("fec0::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("2002:7f00:1::", False),
        ("2002:a00:1::", False),
        ("64:ff9b::a00:1", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public
