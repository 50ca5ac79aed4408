"""A closed-loop HTTP load generator: a few httpx clients, each sending its next request when the last answered."""

from __future__ import annotations

import json
import tempfile
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


@dataclass(frozen=True)
class WrkResult:
    """One ``wrk`` run: requests/s and latency percentiles (seconds), measured by a C client."""

    rps: float
    p50: float
    p99: float
    errors: int


_WRK_SCRIPT = """\
wrk.method = {method}
wrk.body = {body}
{headers}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
bad = 0
function response(status, headers, body)
  if status < 200 or status >= 300 or ({expect} ~= nil and not string.find(body, {expect}, 1, true)) then
    bad = bad + 1
  end
end
function done(summary, latency, requests)
  local wrong = 0
  for _, thread in ipairs(threads) do wrong = wrong + thread:get("bad") end
  local e = summary.errors
  io.write(string.format("WRK %d %d %d %d %d\\n", summary.requests, summary.duration, latency:percentile(50),
           latency:percentile(99), wrong + e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def _lua(value: str | None) -> str:
    return "nil" if value is None else json.dumps(value)  # a JSON string is a valid Lua string literal here


async def wrk_slice(target: Target, *, connections: int, duration: float) -> WrkResult:
    """``connections`` kept-alive connections in a closed loop for ``duration`` seconds, driven by ``wrk`` (one
    thread): the server's latency without a Python client's own CPU on the same cores.

    Raises:
        RuntimeError: wrk failed or a response was not the expected one.
    """
    headers = "\n".join(f"wrk.headers[{_lua(k)}] = {_lua(v)}" for k, v in target.headers.items())
    script = _WRK_SCRIPT.format(method=_lua(target.method), body=_lua((target.body or b"").decode()),
                                headers=headers, expect=_lua(target.expect.decode() if target.expect else None))
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        done = await trio.run_process(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "-s", lua.name,
             target.url + target.path], capture_stdout=True, capture_stderr=True, check=False)
    line = next((x for x in done.stdout.decode().splitlines() if x.startswith("WRK ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.decode()[-300:]}")
    requests, micros, p50, p99, errors = (int(x) for x in line.split()[1:])
    if errors:
        raise RuntimeError(f"wrk: {errors} of {requests} requests failed against {target.url}{target.path}")
    return WrkResult(rps=requests / (micros / 1e6), p50=p50 / 1e6, p99=p99 / 1e6, errors=errors)
