"""A runner of several worker processes behind one port (``RUNNER_WORKERS``), as ``python -m runner_trio``
runs it: one cache, one fetch and one compile per bundle, caps and metrics for the whole runner, and a killed
worker replaced while requests keep succeeding.

Every request here goes on a fresh connection, unless a test says otherwise; the workers take turns
accepting them (each takes a new connection only when it holds the fewest).
"""

from __future__ import annotations

import base64
import os
import re
import signal
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from bundles import pack_directory, publish_bundle
from bundles.store import open_store
from tests.cache.cache_testkit import assert_consistent
from tests.guests.wat import load_wat
from tests.runner.http.conftest import bundle_dir
from tests.system._procs import Service, clean_env, runner_env, start_service

pytestmark = pytest.mark.slow

TOKEN = "workers-service-token-0123456789abcdef"
HEADERS = {"authorization": f"Bearer {TOKEN}"}
SYNC_WAIT_S = 1.5  # > 2 × runner_trio's CACHE_SYNC_INTERVAL_S: every worker has copied its cache figures


class Runner:
    def __init__(self, service: Service, store_uri: str, cache_root: Path, work: Path) -> None:
        self.service = service
        self.store_uri = store_uri
        self.cache_root = cache_root
        self.work = work
        # No kept-alive connections: each request is a new connection, spread by the kernel.
        self.client = httpx.AsyncClient(
            base_url=service.url, headers=HEADERS, timeout=60,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def publish_wat(self, guest: str, name: str) -> str:
        src = bundle_dir(self.work, name, load_wat(guest))
        store = open_store(self.store_uri)
        try:
            return await publish_bundle(store, pack_directory(src))
        finally:
            await store.aclose()

    async def execute(self, content_hash: str, *, body: bytes = b"", extension: str = "ext-1") -> dict[str, Any]:
        doc = {
            "context": {"tenant_id": "tenant-a", "extension_id": extension, "content_hash": content_hash,
                        "install_id": "inst-1", "config": {}},
            "http": {"method": "POST", "path": "/", "query": {}, "headers": {},
                     "body_b64": base64.b64encode(body).decode()},
            "limits": {"timeout_ms": 20_000},
        }
        response = await self.client.post(
            "/v1/execute", json=doc, headers={"x-alga-tenant": "tenant-a", "x-alga-extension": extension}
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def metrics(self) -> dict[str, float]:
        response = await self.client.get("/metrics")
        assert response.status_code == 200
        samples: dict[str, float] = {}
        for line in response.text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def worker_pids(self) -> list[int]:
        # A child is listed under the thread that started it (trio starts processes from worker threads).
        tasks = Path(f"/proc/{self.service.pid}/task")
        return sorted(int(child) for task in tasks.iterdir() for child in (task / "children").read_text().split())


def per_worker(samples: dict[str, float]) -> dict[str, float]:
    pattern = re.compile(r'runner_worker_requests_total\{worker="(\d+)"\}')
    return {m.group(1): v for name, v in samples.items() if (m := pattern.fullmatch(name))}


@pytest.fixture
async def start_runner(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Runner]]]:
    started: list[Runner] = []
    store = tmp_path / "store"
    store.mkdir()

    async def start(**settings: str) -> Runner:
        cache_root = tmp_path / "cache"
        env = runner_env(var_dir=tmp_path / "var", store_uri=store.resolve().as_uri(), cache_root=cache_root,
                         service_token=TOKEN, **{"RUNNER_WORKERS": "2", **settings})
        service = await start_service("runner", "runner_trio", env, tmp_path / "runner.log")
        runner = Runner(service, store.resolve().as_uri(), cache_root, tmp_path)
        started.append(runner)
        return runner

    try:
        yield start
    finally:
        for runner in started:
            await runner.client.aclose()
            assert await runner.service.stop() == 0, runner.service.log_tail()


async def test_fifty_first_requests_on_two_workers_fetch_and_compile_once(
    start_runner: Callable[..., Awaitable[Runner]],
) -> None:
    runner = await start_runner()
    assert len(runner.worker_pids()) == 2
    digest = await runner.publish_wat("echo", "herd")
    results: list[dict[str, Any]] = []

    async def one(i: int) -> None:
        results.append(await runner.execute(digest, body=f"hello {i}".encode()))

    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(one, i)
    assert [r["status"] for r in results] == [200] * 50
    await trio.sleep(SYNC_WAIT_S)
    samples = await runner.metrics()
    assert samples["runner_bundle_fetches_total"] == 1
    assert samples["runner_component_compiles_total"] == 1
    # Metrics are the runner's, whichever worker answers the scrape: every invocation of both workers.
    assert samples['runner_invocations_total{outcome="ok"}'] == 50
    served = per_worker(samples)
    assert set(served) == {"1", "2"}
    assert all(count > 0 for count in served.values()), served
    assert sum(served.values()) == 50 + 1  # the 50 executes and this scrape
    # Usage counters add up over both workers too: each is the sum of the answers' usage.
    for field in ("guest_cpu_ms", "memory_mb_ms"):
        total = sum(r["usage"][field] for r in results)
        [counted] = [value for name, value in samples.items() if name.startswith(f"runner_usage_{field}_total{{")
                     and 'tenant="tenant-a"' in name and 'extension="ext-1"' in name]
        assert counted == pytest.approx(total, rel=1e-6), field


async def test_workers_share_one_cache_without_corrupting_it(
    start_runner: Callable[..., Awaitable[Runner]],
) -> None:
    runner = await start_runner()
    digests = [await runner.publish_wat("echo", f"shared-{i}") for i in range(4)]
    statuses: list[int] = []

    async def one(digest: str) -> None:
        statuses.append((await runner.execute(digest, body=b"x"))["status"])

    async with trio.open_nursery() as nursery:
        for i in range(40):
            nursery.start_soon(one, digests[i % 4])
    assert statuses == [200] * 40
    await trio.sleep(SYNC_WAIT_S)
    samples = await runner.metrics()
    assert samples["runner_bundle_fetches_total"] == 4
    assert samples["runner_component_compiles_total"] == 4
    # Every entry on disk lists exactly its files, with their sizes and sha256, the artifact included.
    entries = assert_consistent(runner.cache_root)
    assert set(entries) == {d.removeprefix("sha256:") for d in digests}
    for files in entries.values():
        assert "entry.wasm" in files
        assert any(name.startswith("precompiled/") for name in files)


def _holders(pids: list[int], ports: list[int]) -> list[int]:
    """For each client port (a connection to the runner), the pid of the worker holding its server side."""
    inodes = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes[target[8:-1]] = pid
    by_peer = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        peer_port = int(fields[2].split(":")[1], 16)
        if fields[9] in inodes:
            by_peer[peer_port] = inodes[fields[9]]
    return [by_peer[port] for port in ports]


async def test_kept_alive_connections_are_spread_evenly_between_the_workers(
    start_runner: Callable[..., Awaitable[Runner]],
) -> None:
    # A gateway's pool holds a few connections for a long time: the kernel's SO_REUSEPORT hash gave one worker
    # 3 or 4 of 4 in half the benchmark's slices. Here 8 are opened one after another and kept open.
    runner = await start_runner()
    digest = await runner.publish_wat("echo", "spread")
    streams = []
    try:
        host, port = runner.service.url.removeprefix("http://").rsplit(":", 1)
        for _ in range(8):
            stream = await trio.open_tcp_stream(host, int(port))
            streams.append(stream)
            await stream.send_all(b"GET /healthz HTTP/1.1\r\nhost: runner\r\n\r\n")
            assert (await stream.receive_some(4096)).startswith(b"HTTP/1.1 200")
        ports = [stream.socket.getsockname()[1] for stream in streams]
        holders = _holders(runner.worker_pids(), ports)
        for opened in range(1, len(holders) + 1):  # after each new connection: as many, or one apart
            counts = [holders[:opened].count(pid) for pid in set(holders)]
            assert max(counts) - min(counts) <= 1, holders
        assert sorted(holders.count(pid) for pid in set(holders)) == [4, 4], holders
    finally:
        for stream in streams:
            await stream.aclose()
    assert (await runner.execute(digest))["status"] == 200


async def test_a_killed_worker_is_replaced_and_requests_keep_succeeding(
    start_runner: Callable[..., Awaitable[Runner]],
) -> None:
    runner = await start_runner()
    digest = await runner.publish_wat("echo", "killed")
    assert (await runner.execute(digest))["status"] == 200
    before = runner.worker_pids()
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    # Wait until the supervisor has reaped it and cleared its slot of the connection table (until then the
    # survivor leaves each new connection to the dead worker for a moment before it takes it).
    with trio.fail_after(30):
        while f"(pid {victim}) exited" not in runner.service.log_tail(20_000):  # noqa: ASYNC110 - its log
            await trio.sleep(0.05)
    # The survivor takes every new connection at once: nothing fails while the supervisor replaces the dead one.
    statuses = [(await runner.execute(digest, body=b"after"))["status"] for _ in range(20)]
    assert statuses == [200] * 20
    with trio.fail_after(60):
        while "replaced" not in runner.service.log_tail(20_000):  # noqa: ASYNC110 - the supervisor's log
            await trio.sleep(0.1)
    after = runner.worker_pids()
    assert len(after) == 2
    assert victim not in after
    statuses = [(await runner.execute(digest, body=b"replaced"))["status"] for _ in range(20)]
    assert statuses == [200] * 20
    await trio.sleep(SYNC_WAIT_S)
    samples = await runner.metrics()
    # The dead worker's counts stay in the runner's totals.
    assert samples['runner_invocations_total{outcome="ok"}'] == 41


async def test_an_extension_cap_of_one_admits_one_invocation_across_both_workers(
    start_runner: Callable[..., Awaitable[Runner]],
) -> None:
    runner = await start_runner(
        RUNNER_MAX_CONCURRENCY_PER_EXTENSION="1", RUNNER_QUEUE_TIMEOUT_MS="0",
    )
    digest = await runner.publish_wat("sleep", "capped")
    # Load the bundle in both workers first (loading happens before admission).
    for _ in range(8):
        assert (await runner.execute(digest, body=struct.pack("<Q", 1)))["status"] == 200
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await runner.execute(digest, body=struct.pack("<Q", 3_000_000_000)))["status"])

    async with trio.open_nursery() as nursery:
        for _ in range(16):
            nursery.start_soon(one)
    assert sorted(statuses) == [200] + [429] * 15
    samples = await runner.metrics()
    served = per_worker(samples)
    assert all(count > 0 for count in served.values()), served  # both workers were asked
    assert samples['runner_invocations_total{outcome="overloaded"}'] == 15


async def test_a_worker_that_cannot_start_stops_the_runner(tmp_path: Path) -> None:
    env = runner_env(var_dir=tmp_path / "var", store_uri=(tmp_path / "store").resolve().as_uri(),
                     cache_root=tmp_path / "cache", service_token=TOKEN, RUNNER_WORKERS="2",
                     SIGNING_TRUST_BUNDLE=str(tmp_path / "missing.pem"))
    with trio.fail_after(120):
        done = await trio.run_process([sys.executable, "-m", "runner_trio"], env=clean_env(env), check=False,
                                      capture_stdout=True, capture_stderr=True)
    output = done.stderr.decode(errors="replace")
    assert done.returncode == 2, output
    assert "SIGNING_TRUST_BUNDLE" in output  # the worker's own reason
    assert "runner: worker" in output
    assert "exited before it was ready: not starting" in output
    assert "listening on" not in output
