"""The network side of guest ``http.fetch``: policy, DNS, address vetting, a pinned connection, caps.

Order of checks, each one before any byte leaves the runner:

1. the per-invocation request count (``not-allowed`` past :data:`DEFAULT_MAX_REQUESTS_PER_INVOCATION`);
2. method and URL syntax (``invalid-url``), then :meth:`EgressPolicy.allows` (``not-allowed``), before DNS;
3. request headers (hop-by-hop and ``Host`` dropped; malformed ones refused as ``invalid-url``) and body size;
4. DNS, done here: every address that is not public (loopback, RFC 1918, ULA, link-local including the
   169.254.169.254 metadata service, multicast, unspecified, reserved, CGNAT, and IPv6 forms that embed such an
   IPv4 address) is dropped unless an allowlist entry names that exact IP literal; nothing left => ``not-allowed``;
5. the connection goes to the vetted address itself: the URL's host is replaced by the IP, while the ``Host``
   header and the TLS SNI/certificate check keep the original name (httpx's ``sni_hostname`` request
   extension). Nothing re-resolves the name, so a DNS answer that changes between check and connect
   (rebinding) cannot steer the request elsewhere.

Redirects are never followed: a 3xx comes back to the guest as is. The response body is streamed and refused
(``transport``) once it passes :data:`DEFAULT_MAX_RESPONSE_BYTES`: a truncated body would be silently wrong.
Every phase is bounded by the invocation deadline and by the named timeouts. Bodies are passed through
untouched (no decompression): the guest sees what the server sent, with its ``content-encoding``.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, NoReturn, final

import httpx
import trio

from servicekit import inject_trace

from ...engine import HostScope
from .._errors import BodyTooLarge, EgressEntryError, HostCallError
from .._httpio import read_capped
from ._egress import URL_REASONS, EgressPolicy, IPAddress, effective_port, normalized_url_host

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_ADDRESSES_TRIED",
    "DEFAULT_MAX_REQUESTS_PER_INVOCATION",
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_MAX_REQUEST_HEADER_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "FetchResponse",
    "FetchStatistics",
    "GuestFetcher",
    "Resolver",
    "is_public_address",
    "resolve_host",
]

DEFAULT_MAX_RESPONSE_BYTES: Final = 10 * 1024 * 1024
DEFAULT_MAX_REQUEST_BYTES: Final = 10 * 1024 * 1024
DEFAULT_MAX_REQUEST_HEADER_BYTES: Final = 64 * 1024
DEFAULT_MAX_REQUESTS_PER_INVOCATION: Final = 50
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
"""DNS plus TCP connect plus TLS handshake, per address tried."""
DEFAULT_READ_TIMEOUT: Final = 30.0
"""Longest silence while waiting for the response or between body chunks."""
DEFAULT_TOTAL_TIMEOUT: Final = 30.0
"""Whole request, first DNS query to last body byte (the reference runner's single 30 s timeout)."""
DEFAULT_MAX_ADDRESSES_TRIED: Final = 3
DEFAULT_USER_AGENT: Final = "alga-ext-runner"

Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
"""``(ascii_host, port) -> addresses``; :func:`resolve_host` by default. Tests may pin names to addresses."""

_TOKEN: Final = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_MAX_METHOD_CHARS: Final = 32
_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",  # we set it from the URL: a guest must not aim the pinned connection at another virtual host
        "content-length",  # computed from the body
    }
)
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")

logger = logging.getLogger("runner_trio.capabilities.http")

REASON_UNDECLARED: Final = "undeclared-host"
"""The bundle's manifest declares its egress hosts and this one is not among them."""


@functools.lru_cache(maxsize=256)
def _declared_policy(hosts: tuple[str, ...]) -> EgressPolicy:
    """The policy of a manifest's ``egress`` list (parsed once per list); a malformed list allows nothing."""
    try:
        return EgressPolicy.parse(hosts)
    except EgressEntryError:
        return EgressPolicy.parse(())


@dataclass(frozen=True, slots=True)
class FetchResponse:
    """What the guest gets back: ``http-response`` with the body always present (possibly empty)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class FetchStatistics:
    """Counts since start: requests attempted and refusals by reason (the app exports them as metrics)."""

    requests: int
    denied: dict[str, int] = field(default_factory=dict)


def is_public_address(address: IPAddress) -> bool:
    """Whether ``address`` is a globally routable unicast address (what guests may reach without naming it)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        embedded: list[ipaddress.IPv4Address] = []
        if address.sixtofour is not None:
            embedded.append(address.sixtofour)
        if address.teredo is not None:
            embedded.extend(address.teredo)
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if any(not is_public_address(inner) for inner in embedded):
            return False
        if address.is_site_local:
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Resolve ``host`` with the system resolver (in a worker thread), in resolver order, without duplicates."""
    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    seen: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in seen:
            seen.append(address)
    return seen


@final
class GuestFetcher:
    """Performs guest HTTP requests under an :class:`EgressPolicy`. One per app; safe to share between tasks.

    Args:
        policy: the parsed ``EXT_EGRESS_ALLOWLIST``.
        resolver: name resolution; the system resolver by default.
        ssl_context: trust for HTTPS; the certifi bundle by default (made once, on first use).
        on_denied: called with a reason (``host``, ``port``, ``userinfo``, ``empty-allowlist``, ``address``,
            ``request-cap``, ``request-too-large``) each time a request is refused as ``not-allowed``; the app
            counts ``runner_egress_denied_total`` with it.
        max_response_bytes: larger response bodies are refused (``transport``).
        max_request_bytes: larger request bodies are refused (``not-allowed``).
        max_request_header_bytes: larger request header sets are refused (``not-allowed``).
        max_requests_per_invocation: requests past this count in one invocation are refused (``not-allowed``).
        connect_timeout: DNS, and connect plus TLS per address.
        read_timeout: the longest wait for response bytes.
        total_timeout: the whole request; the invocation deadline bounds it further.
        max_addresses_tried: how many vetted addresses to try when connecting fails.
    """

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        on_denied: Callable[[str], None] | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        max_request_header_bytes: int = DEFAULT_MAX_REQUEST_HEADER_BYTES,
        max_requests_per_invocation: int = DEFAULT_MAX_REQUESTS_PER_INVOCATION,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
        max_addresses_tried: int = DEFAULT_MAX_ADDRESSES_TRIED,
    ) -> None:
        self._policy = policy
        self._resolve: Resolver = resolver if resolver is not None else resolve_host
        self._ssl_context = ssl_context
        self._on_denied = on_denied
        self._max_response_bytes = max_response_bytes
        self._max_request_bytes = max_request_bytes
        self._max_request_header_bytes = max_request_header_bytes
        self._max_requests = max_requests_per_invocation
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._total_timeout = total_timeout
        self._max_addresses = max(1, max_addresses_tried)
        self._requests = 0
        self._denied: Counter[str] = Counter()

    @property
    def policy(self) -> EgressPolicy:
        return self._policy

    def statistics(self) -> FetchStatistics:
        return FetchStatistics(self._requests, dict(self._denied))

    async def fetch(
        self,
        scope: HostScope,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | None,
    ) -> FetchResponse:
        """Send one guest request and return the upstream response, or raise :class:`HostCallError`.

        Raises:
            HostCallError: ``invalid-url``, ``not-allowed``, ``transport`` (connect, TLS, timeout, size) or
                ``internal``.
        """
        self._requests += 1
        scope.usage.http_requests += 1
        if scope.usage.http_requests > self._max_requests:
            self._deny(scope, "request-cap", None)
        if not isinstance(method, str) or len(method) > _MAX_METHOD_CHARS or not _TOKEN.match(method):
            raise HostCallError("invalid-url", "malformed HTTP method")
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise HostCallError("invalid-url", "unparsable URL") from None
        decision = self._policy.allows(parsed)
        if not decision.allowed:
            if decision.reason in URL_REASONS:
                raise HostCallError("invalid-url", f"URL refused ({decision.reason})")
            self._deny(scope, decision.reason, parsed)
        if scope.egress is not None and not _declared_policy(scope.egress).allows(parsed).allowed:
            # The bundle declares its hosts (what a tenant admin consented to): the allowlist is narrowed to them.
            self._deny(scope, REASON_UNDECLARED, parsed)
        host = normalized_url_host(parsed)
        port = effective_port(parsed)
        if host is None or port is None:  # allows() has checked both; this keeps the types honest
            raise HostCallError("invalid-url", "URL has no usable host or port")
        payload = body if body is not None else b""
        if len(payload) > self._max_request_bytes:
            self._deny(scope, "request-too-large", parsed)
        out_headers = _with_trace(self._filter_headers(scope, headers, parsed))

        total_deadline = min(trio.current_time() + self._total_timeout, scope.deadline)
        try:
            with trio.fail_at(total_deadline):
                addresses = await self._vetted_addresses(scope, parsed, host, port, total_deadline)
                return await self._send_pinned(method.upper(), parsed, host, addresses, out_headers, body)
        except trio.TooSlowError:
            raise HostCallError("transport", "timed out") from None

    def _deny(self, scope: HostScope, reason: str, url: httpx.URL | None) -> NoReturn:
        self._denied[reason] += 1
        if self._on_denied is not None:
            self._on_denied(reason)
        # Never the full URL: its query string may carry tokens.
        target = f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}" if url is not None else "-"
        logger.info(
            "egress denied: tenant=%s extension=%s request=%s target=%s reason=%s",
            scope.tenant_id,
            scope.extension_id,
            scope.request_id,
            target,
            reason,
        )
        raise HostCallError("not-allowed", f"egress denied ({reason})")

    def _filter_headers(
        self, scope: HostScope, headers: Iterable[tuple[str, str]], url: httpx.URL
    ) -> list[tuple[bytes, bytes]]:
        pairs = list(headers)
        named_by_connection = {
            token.strip().lower()
            for name, value in pairs
            if isinstance(name, str) and name.lower() == "connection" and isinstance(value, str)
            for token in value.split(",")
        }
        kept: list[tuple[bytes, bytes]] = []
        size = 0
        has_user_agent = False
        for name, value in pairs:
            if not isinstance(name, str) or not isinstance(value, str) or not _TOKEN.match(name):
                raise HostCallError("invalid-url", "malformed request header name")
            if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
                raise HostCallError("invalid-url", "request header value has control characters")
            lowered = name.lower()
            if lowered in _HOP_BY_HOP or lowered in named_by_connection:
                continue
            has_user_agent = has_user_agent or lowered == "user-agent"
            encoded = (name.encode("ascii"), value.encode("utf-8"))
            size += len(encoded[0]) + len(encoded[1]) + 4
            if size > self._max_request_header_bytes:
                self._deny(scope, "request-too-large", url)
            kept.append(encoded)
        if not has_user_agent:
            kept.append((b"User-Agent", DEFAULT_USER_AGENT.encode("ascii")))
        return kept

    async def _vetted_addresses(
        self, scope: HostScope, url: httpx.URL, host: str, port: int, total_deadline: float
    ) -> list[IPAddress]:
        try:
            candidates: Sequence[IPAddress] = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                with trio.fail_at(min(total_deadline, trio.current_time() + self._connect_timeout)):
                    candidates = await self._resolve(host, port)
            except OSError:
                raise HostCallError("transport", "name resolution failed") from None
        vetted = [
            address
            for address in candidates
            if is_public_address(address) or self._policy.names_address(address, port=port, scheme=url.scheme)
        ]
        if not vetted:
            self._deny(scope, "address", url)
        return vetted[: self._max_addresses]

    async def _send_pinned(
        self,
        method: str,
        url: httpx.URL,
        host: str,
        addresses: list[IPAddress],
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
    ) -> FetchResponse:
        # Host header and SNI carry the name; the socket goes to the vetted address. No keep-alive: a pooled
        # connection must never be reused for another name that happens to share the address.
        host_header = (b"Host", url.netloc)
        extensions: dict[str, object] = {
            "timeout": httpx.Timeout(
                self._total_timeout, connect=self._connect_timeout, read=self._read_timeout
            ).as_dict()
        }
        is_literal = any(str(address) == host for address in addresses)
        if url.scheme == "https" and not is_literal:
            extensions["sni_hostname"] = host
        transport = httpx.AsyncHTTPTransport(
            verify=self._get_ssl_context(),
            trust_env=False,
            retries=0,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        async with httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False) as client:
            for attempt, address in enumerate(addresses):
                request = httpx.Request(
                    method,
                    url.copy_with(host=str(address)),
                    headers=[host_header, *headers],
                    content=body,
                    extensions=extensions,
                )
                try:
                    return await self._exchange(client, request)
                except (httpx.ConnectError, httpx.ConnectTimeout):
                    if attempt + 1 == len(addresses):
                        raise HostCallError("transport", "connection failed") from None
                except httpx.HTTPError as exc:
                    raise HostCallError("transport", type(exc).__name__) from None
        raise HostCallError("internal", "no address to connect to")  # unreachable: addresses is never empty

    async def _exchange(self, client: httpx.AsyncClient, request: httpx.Request) -> FetchResponse:
        response = await client.send(request, stream=True)
        try:
            body = await read_capped(response, self._max_response_bytes)
        except BodyTooLarge:
            raise HostCallError("transport", "response body over the size cap") from None
        finally:
            await response.aclose()
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in response.headers.raw]
        return FetchResponse(response.status_code, headers, body)

    def _get_ssl_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context


def _with_trace(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Inside a traced request, the fetch carries the host call's W3C ``traceparent`` (replacing the guest's)."""
    trace_headers: dict[str, str] = {}
    inject_trace(trace_headers)
    if not trace_headers:
        return headers
    names = {name.encode("ascii") for name in trace_headers}
    kept = [(name, value) for name, value in headers if name.lower() not in names]
    return kept + [(name.encode("ascii"), value.encode("ascii")) for name, value in trace_headers.items()]
