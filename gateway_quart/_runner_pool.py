"""Which runners a call may go to, and in what order: the gateway's view of the runner fleet.

- **Members**: the URLs of ``RUNNER_BASE_URL`` as they are (``static``), or, with ``dns`` discovery, each URL's
  host name resolved to all its addresses, one member per address, re-resolved every
  ``DEFAULT_DISCOVERY_INTERVAL_S`` — a Kubernetes headless Service (``clusterIP: None``) names every ready
  runner pod this way, so each gateway spreads over the pods itself instead of through one kube-proxy choice.
- **Health**: every member's ``/readyz`` is polled every ``DEFAULT_HEALTH_INTERVAL_S``; a member that fails it
  (503 draining/warming, refused, timed out) goes to the back of every order until it passes again, and the
  runner client's own cooldown (a refused connection, a draining answer) does the same between polls.
- **Order**: round robin by default; with ``content-hash`` affinity, rendezvous (highest random weight)
  hashing of (member, content hash), so each bundle has a stable first runner whose caches stay hot, a
  second one when it fails, and adding or removing a runner moves only that runner's share of the bundles.
"""

from __future__ import annotations

import hashlib
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Literal, final

import httpx
import trio

log = logging.getLogger("gateway_quart.runners")

Discovery = Literal["static", "dns"]
Affinity = Literal["round-robin", "content-hash"]

DEFAULT_HEALTH_INTERVAL_S: Final = 2.0
DEFAULT_HEALTH_TIMEOUT_S: Final = 1.0
DEFAULT_DISCOVERY_INTERVAL_S: Final = 5.0

Resolve = Callable[[str, int], Awaitable[Sequence[str]]]


async def _resolve(host: str, port: int) -> list[str]:
    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _weight(member: str, key: str) -> bytes:
    return hashlib.blake2b(f"{member}\x00{key}".encode(), digest_size=8).digest()


@final
class RunnerPool:
    """The runners a gateway calls (see the module doc). ``run()`` keeps membership and health current."""

    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        discovery: Discovery = "static",
        affinity: Affinity = "round-robin",
        service_token: str | None = None,
        health_interval_s: float = DEFAULT_HEALTH_INTERVAL_S,
        health_timeout_s: float = DEFAULT_HEALTH_TIMEOUT_S,
        discovery_interval_s: float = DEFAULT_DISCOVERY_INTERVAL_S,
        resolve: Resolve = _resolve,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_urls:
            raise ValueError("at least one runner URL is required")
        self._seeds = tuple(url.rstrip("/") for url in base_urls)
        self._discovery = discovery
        self._affinity = affinity
        self._health_interval_s = health_interval_s
        self._health_timeout_s = health_timeout_s
        self._discovery_interval_s = discovery_interval_s
        self._resolve = resolve
        self._members: tuple[str, ...] = self._seeds
        self._unhealthy: set[str] = set()
        self._cooling: dict[str, float] = {}
        self._next = 0
        headers = {"authorization": f"Bearer {service_token}"} if service_token else {}
        self._transport = transport
        self._headers = headers

    @property
    def members(self) -> tuple[str, ...]:
        return self._members

    @property
    def unhealthy(self) -> frozenset[str]:
        return frozenset(self._unhealthy)

    def cool(self, url: str, seconds: float) -> None:
        """Put ``url`` at the back of every order for ``seconds`` (it refused a connection, or is draining)."""
        self._cooling[url] = trio.current_time() + seconds

    def order(self, key: str | None = None) -> list[str]:
        """The members to try for one call, best first: healthy and not cooling, then the rest."""
        members = self._members
        if self._affinity == "content-hash" and key:
            ranked = sorted(members, key=lambda member: _weight(member, key), reverse=True)
        else:
            start = self._next % len(members)
            self._next += 1
            ranked = list(members[start:] + members[:start])
        now = trio.current_time()
        good = [m for m in ranked if m not in self._unhealthy and self._cooling.get(m, 0.0) <= now]
        return good + [m for m in ranked if m not in good]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Discover members (``dns``) and poll their health until cancelled."""
        async with httpx.AsyncClient(transport=self._transport, headers=self._headers, trust_env=False,
                                     timeout=self._health_timeout_s, follow_redirects=False) as client:
            if self._discovery == "dns":
                await self.discover()
            await self.check(client)
            task_status.started()
            next_discovery = trio.current_time() + self._discovery_interval_s
            while True:
                await trio.sleep(self._health_interval_s)
                if self._discovery == "dns" and trio.current_time() >= next_discovery:
                    await self.discover()
                    next_discovery = trio.current_time() + self._discovery_interval_s
                await self.check(client)

    async def discover(self) -> None:
        """Resolve each seed URL's host to its addresses (``dns`` discovery); keep the old members on failure."""
        found: list[str] = []
        for seed in self._seeds:
            parts = urllib.parse.urlsplit(seed)
            host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
            try:
                addresses = await self._resolve(host, port)
            except OSError as exc:
                log.warning("runner discovery: %s does not resolve (%s); keeping %d members", host, exc,
                            len(self._members))
                return
            for address in addresses:
                netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
                found.append(urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", "")).rstrip("/"))
        members = tuple(dict.fromkeys(found))
        if members and members != self._members:
            log.info("runners: %s", ", ".join(members))
            self._members = members
            self._unhealthy &= set(members)

    async def check(self, client: httpx.AsyncClient) -> None:
        """Poll every member's ``/readyz`` once, concurrently."""
        results: dict[str, bool] = {}

        async def probe(member: str) -> None:
            try:
                response = await client.get(f"{member}/readyz")
                results[member] = response.status_code == 200
            except httpx.HTTPError:
                results[member] = False

        async with trio.open_nursery() as nursery:
            for member in self._members:
                nursery.start_soon(probe, member)
        unhealthy = {member for member, ok in results.items() if not ok}
        for member in unhealthy - self._unhealthy:
            log.warning("runner %s is not ready; calls go to the others first", member)
        for member in self._unhealthy - unhealthy:
            log.info("runner %s is ready again", member)
        self._unhealthy = unhealthy
