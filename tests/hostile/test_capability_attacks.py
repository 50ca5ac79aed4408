"""Hostile guests against the capabilities, through a real runner: egress to a private address by name and by
redirect, storage writes cut short by a trap or by the deadline, and host calls after the deadline.

Storage semantic (documented in docs/security.md, "Hostile guests"): each host call commits on its own. A write a guest
made before it trapped or ran out of time is **kept** (there is no invocation-wide transaction to roll back,
as with the reference runner's per-call storage API), and each single write is all or nothing: a reader sees
the whole previous value or the whole new one, never part of one.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
import time
from collections.abc import Callable

import pytest
import trio

from runner_trio import Settings
from runner_trio.capabilities.storage import DEFAULT_MAX_VALUE_BYTES
from tests._timing import DEADLINE_SLACK_S
from tests.runner.capabilities._servers import Req, Resp, start_server
from tests.runner.http.conftest import RunnerHandle, Shared

from .conftest import HTTP, STORAGE, Ran, publish_hostile, run, start_runner

NOT_ALLOWED = 1
"""``http-error`` case index of ``not-allowed``."""
MISSING = 0
"""``storage-error`` case index of ``missing``."""


def fetch_results(ran: Ran) -> list[tuple[str, int]]:
    """The fetch guest's answer: ("status", code) or ("error", case) per URL."""
    assert (ran.status, ran.result["error"]) == (200, None), ran.result
    results: list[tuple[str, int]] = []
    for offset in range(0, len(ran.body), 4):
        tag, value = ran.body[offset], struct.unpack_from("<H", ran.body, offset + 1)[0]
        results.append(("status", value) if tag == 0 else ("error", value & 0xFF))
    return results


async def read_key(runner: RunnerHandle, key: str) -> Ran:
    store = await publish_hostile(runner, "store", STORAGE)
    return await run(runner, store, body=b"r" + key.encode(), providers=STORAGE)


# -- egress ------------------------------------------------------------------------------------------------


async def test_fetch_to_a_private_address_by_name_is_refused(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared
) -> None:
    async def private(request: Req) -> Resp:
        return Resp(200, body=b"internal secret")

    target = await start_server(nursery, private)
    # The allowlist names the host, so the policy lets the URL through; `localhost` (/etc/hosts) resolves to
    # 127.0.0.1, which no entry names as an IP literal: refused after DNS.
    runner = await start_runner(nursery, runner_settings(egress_allowlist=(f"localhost:{target.port}",)), shared)
    fetch = await publish_hostile(runner, "fetch", HTTP)
    ran = await run(runner, fetch, body=f"http://localhost:{target.port}/secret".encode(), providers=HTTP)
    assert fetch_results(ran) == [("error", NOT_ALLOWED)]
    assert target.seen == [], "no request reached the private address"
    await runner.client.aclose()
    runner.shutdown.set()


async def test_a_redirect_to_a_private_address_is_refused(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared
) -> None:
    async def private(request: Req) -> Resp:
        return Resp(200, body=b"internal secret")

    target = await start_server(nursery, private)
    location = f"http://localhost:{target.port}/secret"

    async def redirector(request: Req) -> Resp:
        return Resp(302, [("location", location)])

    public = await start_server(nursery, redirector)
    # The redirector is allowed by its explicit IP literal (standing in for a public host); the target only by
    # name, which resolves to loopback.
    allow = (f"127.0.0.1:{public.port}", f"localhost:{target.port}")
    runner = await start_runner(nursery, runner_settings(egress_allowlist=allow), shared)
    fetch = await publish_hostile(runner, "fetch", HTTP)
    urls = f"http://127.0.0.1:{public.port}/go\n{location}"
    ran = await run(runner, fetch, body=urls.encode(), providers=HTTP)
    # The 302 comes back to the guest as is (never followed), and following it by hand is refused.
    assert fetch_results(ran) == [("status", 302), ("error", NOT_ALLOWED)]
    assert [r.path for r in public.seen] == ["/go"]
    assert target.seen == [], "the redirect target was never requested"
    await runner.client.aclose()
    runner.shutdown.set()


# -- storage -----------------------------------------------------------------------------------------------


async def test_a_write_before_a_trap_is_kept_whole(runner: RunnerHandle) -> None:
    store = await publish_hostile(runner, "store", STORAGE)
    value = os.urandom(DEFAULT_MAX_VALUE_BYTES)  # the largest value a single write may carry
    ran = await run(runner, store, body=b"w" + value, providers=STORAGE)
    assert (ran.status, ran.result["error"]) == (500, "execute_failed: trap"), ran.result
    read = await read_key(runner, "k")
    assert (read.status, len(read.body)) == (200, len(value))
    assert read.body == value, "the write is kept, all of it"


async def test_writes_cut_by_the_deadline_are_each_whole(runner: RunnerHandle) -> None:
    store = await publish_hostile(runner, "store", STORAGE)
    ran = await run(runner, store, body=b"l", providers=STORAGE, timeout_ms=1000)
    assert ran.result["error"] == "execute_failed: timeout", ran.result
    assert ran.seconds < 1.0 + DEADLINE_SLACK_S
    read = await read_key(runner, "loop")
    assert read.status == 200, "the guest wrote at least once before its deadline"
    assert len(read.body) == 32 * 1024
    assert read.body[0] != 0
    assert read.body == bytes([read.body[0]]) * len(read.body), "one write, all of it"


# -- host calls after the deadline ---------------------------------------------------------------------------


async def test_host_calls_after_the_deadline_have_no_effect(
    runner: RunnerHandle, caplog: pytest.LogCaptureFixture
) -> None:
    late = await publish_hostile(runner, "late", STORAGE)
    caplog.set_level(logging.INFO, logger="runner_trio.guest")
    assert (await read_key(runner, "late")).status == 404  # creates the storage database
    database = runner.settings.var_dir / "storage.sqlite3"
    assert database.exists()
    timeout_ms = 300
    lock = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    outcome: dict[str, Ran] = {}

    async def attack() -> None:
        outcome["late"] = await run(runner, late, providers=STORAGE, timeout_ms=timeout_ms)

    try:
        # Another writer holds the database lock past the guest's deadline: the guest's first put waits for it
        # in a worker thread that trio cannot abandon, and returns (successfully) after the deadline.
        await trio.to_thread.run_sync(lock.execute, "BEGIN IMMEDIATE")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(attack)
            await trio.sleep(timeout_ms / 1000 + 0.4)
            await trio.to_thread.run_sync(lock.execute, "COMMIT")
    finally:
        lock.close()
    ran = outcome["late"]
    assert ran.answer == {"status": 504, "headers": {}, "body_b64": None, "error": "execute_failed: timeout"}
    read = await read_key(runner, "late")
    assert (read.status, read.body) == (404, bytes([MISSING])), "the put after the deadline had no effect"
    assert not [r for r in caplog.records if "late host call" in r.getMessage()], "the log after it had none"
    # The put in flight at the deadline was not abandoned half-way: it completed, whole, once it had the lock.
    first = await read_key(runner, "first")
    assert (first.status, first.body) == (200, b"1")

    # The same calls within the deadline take effect (the checks above can see them).
    ran = await run(runner, late, providers=STORAGE)
    assert (ran.status, ran.result["error"]) == (200, None)
    assert (await read_key(runner, "late")).body == b"1"
    assert [r for r in caplog.records if "late host call" in r.getMessage()]


async def test_host_calls_after_the_deadline_have_no_effect_on_a_busy_loop(
    runner: RunnerHandle, caplog: pytest.LogCaptureFixture
) -> None:
    # A busy event loop (a loaded machine) notices the deadline late: neither trio's cancellation nor the epoch
    # ticker (a trio task) reaches the guest until the loop is free again. The guest reads the clock until
    # 100 ms past its deadline, then logs: that call comes after the deadline and must have no effect.
    late = await publish_hostile(runner, "late-clock")
    caplog.set_level(logging.INFO, logger="runner_trio.guest")
    timeout_ms = 300
    outcome: dict[str, Ran] = {}

    async def attack() -> None:
        outcome["late"] = await run(runner, late, body=struct.pack("<Q", (timeout_ms + 100) * 10**6),
                                    timeout_ms=timeout_ms)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(attack)
        await trio.sleep(timeout_ms / 1000 / 2)
        time.sleep(timeout_ms / 1000 + 0.3)  # noqa: ASYNC251 - blocks the event loop on purpose
    ran = outcome["late"]
    assert ran.answer == {"status": 504, "headers": {}, "body_b64": None, "error": "execute_failed: timeout"}
    assert not [r for r in caplog.records if "late host call" in r.getMessage()], "the late log had no effect"

    # Within the deadline the same call takes effect (the check above can see it).
    ran = await run(runner, late, body=struct.pack("<Q", 0))
    assert (ran.status, ran.result["error"]) == (200, None)
    assert [r for r in caplog.records if "late host call" in r.getMessage()]
