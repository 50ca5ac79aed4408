"""A closed-loop HTTP load generator: a few httpx clients, each sending its next request when the last answered."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import trio

from ._common import median, percentile


@dataclass(frozen=True)
class Target:
    """One request, pre-encoded so the load generator spends as little CPU as it can per request."""

    url: str  # base URL of the service
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"
    expect: bytes | None = b'"error": null'  # must appear in a good answer (None: status 2xx is enough)


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_error: str | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)

    def merge(self, other: LoadResult) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.seconds += other.seconds
        self.latencies.extend(other.latencies)
        self.first_error = self.first_error or other.first_error


async def closed_loop(targets: Sequence[Target], *, concurrency: int, duration: float) -> LoadResult:
    """Run ``concurrency`` clients for ``duration`` seconds; client ``i`` sends ``targets[i % len(targets)]``.

    Each client holds one keep-alive connection. Throughput counts the requests answered between the start and
    the last answer (requests in flight at the deadline are completed and counted).
    """
    result = LoadResult()
    clients = [httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=1)) for _ in range(concurrency)]
    try:
        # Open every connection before the clock starts.
        for i, client in enumerate(clients):
            target = targets[i % len(targets)]
            await client.get(f"{target.url}/healthz")
        start = time.perf_counter()
        deadline = start + duration

        async def worker(client: httpx.AsyncClient, target: Target) -> None:
            url = target.url + target.path
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                response = await client.request(target.method, url, content=target.body, headers=target.headers)
                elapsed = time.perf_counter() - t0
                good = 200 <= response.status_code < 300 and (
                    target.expect is None or target.expect in response.content
                )
                if good:
                    result.requests += 1
                    result.latencies.append(elapsed)
                else:
                    result.errors += 1
                    if result.first_error is None:
                        result.first_error = f"HTTP {response.status_code}: {response.text[:200]}"

        async with trio.open_nursery() as nursery:
            for i, client in enumerate(clients):
                nursery.start_soon(worker, client, targets[i % len(targets)])
        result.seconds = time.perf_counter() - start
    finally:
        for client in clients:
            await client.aclose()
    return result


async def sequential(target: Target, count: int) -> list[float]:
    """``count`` requests one after another on one connection; their latencies."""
    async with httpx.AsyncClient(timeout=60) as client:
        await client.get(f"{target.url}/healthz")
        return [await one(client, target) for _ in range(count)]


async def one(client: httpx.AsyncClient, target: Target) -> float:
    t0 = time.perf_counter()
    response = await client.request(target.method, target.url + target.path, content=target.body,
                                    headers=target.headers)
    elapsed = time.perf_counter() - t0
    if not 200 <= response.status_code < 300 or (target.expect is not None and target.expect not in response.content):
        raise RuntimeError(f"{target.url}{target.path}: HTTP {response.status_code}: {response.text[:300]}")
    return elapsed


def summarize(results: Sequence[LoadResult]) -> tuple[float, LoadResult]:
    """(median requests/s over the slices, all slices merged)."""
    merged = LoadResult()
    for r in results:
        merged.merge(r)
    return median([r.rps for r in results]), merged
