"""Drive a :class:`~tests.system._load_plan.Plan` through a real gateway and account for every call.

Two kinds of client send the calls, at once:

* ``concurrency`` workers sharing one httpx client whose pool keeps its connections alive, as a service
  calling the gateway would;
* ``raw_sockets`` careless clients on raw HTTP/1.1 (``tests/_http1.py``): they keep one connection for as
  long as the server lets them, send the head of a POST bound for an early answer (401, 404, or 429 once the
  rate-limited tenant's bucket is empty) alone and read that answer before sending the body they announced,
  and send their next request on the same connection even after an answer said ``Connection: close`` (the
  way the lost requests of issue 13 were reproduced by hand). A server that closes after saying so is fine:
  the call is sent again on a new connection. A connection closed without notice, or a request that gets
  neither an answer nor a close, is a finding.

Every call ends with exactly one :class:`Answer`; an answer whose ids do not match its call, a transport
error and a timeout are findings with a kind (``errors``), never retried away.
"""

from __future__ import annotations

import collections
import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx
import trio

from bundles import pack_directory, publish_bundle
from bundles.store import open_store
from tests._http1 import NoAnswer, RawConnection

from ._load_plan import ECHO_MANIFEST, EXTENSION, HOT_TENANT, OK_TENANTS, Call, Kind, Plan, head_bytes, verify
from ._procs import ProcessSample, sample_process

REQUEST_TIMEOUT_S: Final = 30.0
"""Far beyond any answer on a loaded machine; a request still unanswered then is lost."""
KEEPALIVE_EXPIRY_S: Final = 2.0
"""How long the pooled client reuses an idle connection: below the servers' keep-alive timeout (Hypercorn's
5 s), as a client must be, so a request is never written into a connection the server is closing for idleness
(httpx's default is 5 s too: equal timeouts race)."""
MAX_RESENDS: Final = 3
"""Times a raw client sends one call again after the server closed (as it said it would) before answering."""


# -- setup ---------------------------------------------------------------------------------------------------


async def publish_echo(store_uri: str, work: Path, component: bytes) -> str:
    """Publish the echo guest under a manifest declaring ``GET /items`` and ``POST /items``; its hash."""
    src = work / "load-echo"
    src.mkdir(parents=True, exist_ok=True)
    (src / "manifest.json").write_text(json.dumps(ECHO_MANIFEST))
    (src / "entry.wasm").write_bytes(component)
    data = await trio.to_thread.run_sync(pack_directory, src)
    store = open_store(store_uri)
    try:
        return await publish_bundle(store, data)
    finally:
        await store.aclose()


async def install_tenants(client: httpx.AsyncClient, admin_token: str, content_hash: str) -> dict[str, str]:
    """Register the echo bundle, create the ``ok-*`` tenants and ``hot``, each with a member's API token and
    an install; returns tenant -> token."""
    admin = {"authorization": f"Bearer {admin_token}"}

    async def post(path: str, body: object) -> dict[str, object]:
        response = await client.post(path, json=body, headers=admin)
        if response.status_code >= 300:
            raise RuntimeError(f"admin {path}: HTTP {response.status_code}: {response.text[:300]}")
        answer: dict[str, object] = response.json()
        return answer

    await post("/api/v1/extensions", {"content_hash": content_hash, "extension_id": EXTENSION})
    tokens: dict[str, str] = {}
    for tenant in (*OK_TENANTS, HOT_TENANT):
        await post("/api/v1/tenants", {"id": tenant, "name": tenant})
        user = await post(f"/api/v1/tenants/{tenant}/users",
                          {"email": f"load@{tenant}.test", "name": "Load", "roles": ["member"]})
        token = await post(f"/api/v1/users/{user['id']}/tokens", {"name": "load"})
        tokens[tenant] = str(token["token"])
        await post(f"/api/v1/tenants/{tenant}/installs", {"extension_id": EXTENSION})
    return tokens


async def warm_runner(client: httpx.AsyncClient, url: str, service_token: str, content_hash: str) -> None:
    response = await client.post(f"{url}/v1/warmup", json={"content_hash": content_hash}, timeout=120,
                                 headers={"authorization": f"Bearer {service_token}"})
    response.raise_for_status()


async def ok_invocations(client: httpx.AsyncClient, url: str) -> int:
    """``runner_invocations_total{outcome="ok"}`` of one runner."""
    response = await client.get(f"{url}/metrics")
    response.raise_for_status()
    for line in response.text.splitlines():
        if line.startswith('runner_invocations_total{outcome="ok"}'):
            return int(float(line.split()[-1]))
    raise RuntimeError(f"{url}/metrics has no runner_invocations_total for ok")


async def audit_statuses(client: httpx.AsyncClient, admin_token: str, registry: Path) -> dict[str, list[int]]:
    """request id -> the statuses of its audit rows, read from the registry once the gateway has written them.

    The admin API's audit listing first waits for the rows still being finished in the background; the
    listing itself is capped at 1000 rows, so the rows are then read from the SQLite file.
    """
    response = await client.get(f"/api/v1/tenants/{OK_TENANTS[0]}/audit", params={"limit": "1"},
                                headers={"authorization": f"Bearer {admin_token}"})
    response.raise_for_status()

    def read() -> dict[str, list[int]]:
        rows: dict[str, list[int]] = collections.defaultdict(list)
        with sqlite3.connect(f"file:{registry}?mode=ro", uri=True) as db:
            for request_id, status in db.execute("SELECT request_id, status FROM audit_log"):
                rows[str(request_id)].append(int(status) if status is not None else 0)
        return dict(rows)

    return await trio.to_thread.run_sync(read)


# -- the run -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int  # 0: none (see ``problem``)
    seconds: float
    problem: str | None  # None: the answer is this call's and allowed for its kind
    resends: int = 0  # raw clients: times sent again after an announced close


@dataclass
class Outcome:
    answers: dict[str, Answer] = field(default_factory=dict)
    seconds: float = 0.0
    closes_after_notice: int = 0  # raw: connections the server closed after saying Connection: close

    @property
    def errors(self) -> collections.Counter[str]:
        """Findings by kind (the part of the problem before the first colon)."""
        return collections.Counter(a.problem.split(":")[0] for a in self.answers.values() if a.problem)

    def latencies(self) -> list[float]:
        return [a.seconds for a in self.answers.values() if a.problem is None]


@dataclass
class _Run:
    outcome: Outcome
    bucket_empty: trio.Event  # set at the first 429 of the hot tenant (or when the pooled calls are done)
    saw_429: bool = False  # the bucket is empty and stays so (no refill during a run): its calls get 429


async def drive(plan: Plan, url: str, *, concurrency: int, raw_sockets: int) -> Outcome:
    """Send every call of ``plan`` to the gateway at ``url``; returns when each has its one answer.

    The raw clients hold their calls to the rate-limited tenant until its bucket is empty (the first 429
    anyone sees, or the end of the pooled calls), so those are the early 429s the issue reproduced by hand.
    """
    run = _Run(Outcome(), trio.Event())
    pooled = iter([call for call in plan.calls if not call.raw])
    raw = [call for call in plan.calls if call.raw]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency,
                          keepalive_expiry=KEEPALIVE_EXPIRY_S)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=REQUEST_TIMEOUT_S,
                                 trust_env=False) as client, trio.open_nursery() as nursery:
        for i in range(raw_sockets):
            nursery.start_soon(_raw_worker, url, raw[i::raw_sockets], run)
        async with trio.open_nursery() as pool:
            for _ in range(concurrency):
                pool.start_soon(_pooled_worker, client, pooled, run)
        run.bucket_empty.set()
    run.outcome.seconds = time.perf_counter() - started
    return run.outcome


async def _pooled_worker(client: httpx.AsyncClient, calls: Iterator[Call], run: _Run) -> None:
    outcome = run.outcome
    for call in calls:  # one shared iterator: each worker takes the next call when its last one is answered
        t0 = time.perf_counter()
        try:
            response = await client.request(call.method, call.target, content=call.body, headers=call.headers)
        except httpx.TimeoutException as exc:
            elapsed = time.perf_counter() - t0
            outcome.answers[call.id] = Answer(0, elapsed, f"lost: {type(exc).__name__} after {elapsed:.2f} s")
            continue
        except httpx.HTTPError as exc:
            elapsed = time.perf_counter() - t0
            outcome.answers[call.id] = Answer(0, elapsed, f"transport: {type(exc).__name__} after {elapsed:.2f} s "
                                              f"({exc!r:.120})")
            continue
        elapsed = time.perf_counter() - t0
        outcome.answers[call.id] = Answer(response.status_code, elapsed,
                                          verify(call, response.status_code, response.headers, response.content))
        if response.status_code == 429 and call.kind is Kind.LIMITED:
            run.saw_429 = True
            run.bucket_empty.set()


async def _raw_worker(url: str, calls: Sequence[Call], run: _Run) -> None:
    deferred = [call for call in calls if call.kind is Kind.LIMITED]
    async with _RawClient(url, run.outcome) as client:
        for call in calls:
            if call.kind is not Kind.LIMITED:
                await client.send(call, early=call.early)
        await run.bucket_empty.wait()
        await client.reconnect()  # an idle connection may have met the server's keep-alive timeout meanwhile
        for call in deferred:
            # An empty bucket: the gateway answers 429 before reading a body, so send the head alone.
            await client.send(call, early=call.body is not None and run.saw_429)


class _RawClient:
    """A careless HTTP/1.1 client on one raw connection at a time (see the module docstring)."""

    def __init__(self, url: str, outcome: Outcome) -> None:
        self._url = url
        self._outcome = outcome
        self._conn: RawConnection | None = None
        self._told_close = False  # the last answer on ``_conn`` said Connection: close

    async def __aenter__(self) -> _RawClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.reconnect()

    async def reconnect(self) -> None:
        """Drop the connection; the next call opens a new one."""
        if self._conn is not None:
            await self._conn.aclose()
            self._conn = None

    async def send(self, call: Call, *, early: bool) -> None:
        """Send ``call`` (``early``: the head alone, the body after the answer) and record its one answer."""
        answers = self._outcome.answers
        resends = 0
        t0 = time.perf_counter()
        while True:
            if self._conn is None:
                self._conn, self._told_close = await RawConnection.open(self._url), False
            conn = self._conn
            head = head_bytes(call)
            sent = await conn.send(head if early else head + (call.body or b""))
            try:
                response = await conn.read_response() if sent else None
            except NoAnswer:
                answers[call.id] = Answer(0, time.perf_counter() - t0, "lost: no answer, no close", resends)
                await self.reconnect()
                return
            if response is None:  # closed before answering: fine only if the server said it would
                await self.reconnect()
                if not self._told_close:
                    answers[call.id] = Answer(0, time.perf_counter() - t0, "closed: without Connection: close",
                                              resends)
                    return
                self._outcome.closes_after_notice += 1
                resends += 1
                if resends > MAX_RESENDS:
                    answers[call.id] = Answer(0, time.perf_counter() - t0, "closed: every time", resends)
                    return
                continue
            if early:
                await conn.send(call.body or b"")  # the body it announced, answered or not
            self._told_close = response.headers.get("connection", "").lower() == "close"
            problem = verify(call, response.status, response.headers, response.body)
            answers[call.id] = Answer(response.status, time.perf_counter() - t0, problem, resends)
            return


# -- checks and report ---------------------------------------------------------------------------------------


def check(plan: Plan, outcome: Outcome, *, invocations: int | None = None,
          audit: Mapping[str, list[int]] | None = None) -> list[str]:
    """Everything wrong with a run, one line each (empty: every call answered, matched and accounted for).

    Args:
        invocations: guest runs the runners counted during the run (``ok`` outcome, summed).
        audit: request id -> statuses of its audit rows.
    """
    problems: list[str] = []
    unanswered = [call.id for call in plan.calls if call.id not in outcome.answers]
    if unanswered:
        problems.append(f"{len(unanswered)} calls never finished: {unanswered[:5]}")
    for call in plan.calls:
        answer = outcome.answers.get(call.id)
        if answer is not None and answer.problem is not None and len(problems) < 20:
            problems.append(f"{call.id} ({call.method}{' raw' if call.raw else ''}): {answer.problem}")
    bad = sum(a.problem is not None for a in outcome.answers.values())
    if bad:
        problems.append(f"{bad} calls without their right answer, by kind: {dict(outcome.errors)}")
    limited = sum(a.status == 429 for a in outcome.answers.values())
    if limited != plan.expected_429:
        problems.append(f"{limited} calls got 429, the hot tenant's bucket allows exactly {plan.expected_429}")
    ran = [call for call in plan.calls if outcome.answers.get(call.id, Answer(0, 0, None)).status == 200]
    if invocations is not None and invocations != len(ran):
        problems.append(f"the runners ran the guest {invocations} times for {len(ran)} answers of 200")
    if audit is not None:
        for call in plan.calls:
            answer = outcome.answers.get(call.id)
            audited = answer is not None and answer.status not in (0, 401, 404, 429)
            rows = audit.get(call.id, [])
            want = [answer.status] if answer is not None and audited else []
            if rows != want and len(problems) < 40:
                problems.append(f"{call.id}: audit rows {rows}, expected {want}")
    return problems


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.1f} MiB"


def process_table(start: Mapping[str, tuple[int, ProcessSample]], end: Mapping[str, ProcessSample]) -> str:
    """Per process: pid, RSS and open files at start and end, CPU seconds spent in between."""
    lines = [f"  {'process':<24} {'pid':>7}  {'RSS start -> end':<24} {'open files':<12} CPU during the run"]
    for name, (pid, first) in start.items():
        last = end.get(name, ProcessSample(None, None))
        rss = f"{_mib(first.rss_bytes)} -> {_mib(last.rss_bytes)}"
        files = f"{first.open_files} -> {last.open_files}"
        cpu = "n/a" if first.cpu_s is None or last.cpu_s is None else f"{last.cpu_s - first.cpu_s:.1f} s"
        lines.append(f"  {name:<24} {pid:>7}  {rss:<24} {files:<12} {cpu}")
    return "\n".join(lines)


def sample_all(pids: Mapping[str, int]) -> dict[str, ProcessSample]:
    return {name: sample_process(pid) for name, pid in pids.items()}


def summary(plan: Plan, outcome: Outcome) -> str:
    """Calls by kind and status, raw-socket figures, findings by kind."""
    table: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    for call in plan.calls:
        answer = outcome.answers.get(call.id)
        table[f"{call.kind.value}{' (raw)' if call.raw else ''}"][answer.status if answer else -1] += 1
    rows = [f"  {kind:<16} {dict(sorted(statuses.items()))}" for kind, statuses in sorted(table.items())]
    resent = sum(a.resends for a in outcome.answers.values())
    rows.append(f"  raw sockets: {sum(c.raw for c in plan.calls)} calls, {outcome.closes_after_notice} closes after "
                f"Connection: close, {resent} calls sent again on a new connection")
    rows.append(f"  errors by kind: {dict(outcome.errors) or 'none'}")
    return "\n".join(rows)

