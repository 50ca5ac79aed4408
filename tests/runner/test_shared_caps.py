"""Runner-wide tenant and extension caps (``SharedCaps``): two `Admission`s over one caps directory stand for
two worker processes (the slots are ``flock``s, which exclude each other per open file as between processes;
tests/system/test_workers.py checks the same across real workers)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from runner_trio._admission import Admission
from runner_trio._errors import Overloaded
from runner_trio._shared_caps import SharedCaps


def _worker(caps_dir: Path, *, per_extension: int = 1, queue_timeout: float = 0.0) -> Admission:
    shared = SharedCaps(caps_dir, max_per_tenant=8, max_per_extension=per_extension)
    return Admission(max_concurrency=8, max_per_tenant=8, max_per_extension=8, queue_timeout=queue_timeout,
                     shared=shared)


async def test_an_extension_cap_of_one_is_shared_by_two_workers(tmp_path: Path) -> None:
    first, second = _worker(tmp_path), _worker(tmp_path)
    async with first.slot("t", "e"):
        with pytest.raises(Overloaded):
            async with second.slot("t", "e"):
                pass
        async with second.slot("t", "other"):  # another extension has its own slot
            pass
    async with second.slot("t", "e"):  # given back: the other worker gets it
        pass


async def test_a_waiter_in_another_worker_gets_the_slot_when_it_is_given_back(tmp_path: Path) -> None:
    first, second = _worker(tmp_path), _worker(tmp_path, queue_timeout=30.0)
    order: list[str] = []
    release = trio.Event()

    async def holder() -> None:
        async with first.slot("t", "e"):
            order.append("first in")
            await release.wait()
        order.append("first out")

    async def waiter() -> None:
        async with second.slot("t", "e"):
            order.append("second in")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(holder)
        await trio.sleep(0.05)
        nursery.start_soon(waiter)
        await trio.sleep(0.05)
        assert order == ["first in"]
        release.set()
    assert order == ["first in", "first out", "second in"]


async def test_a_killed_process_gives_its_slot_back(tmp_path: Path) -> None:
    # A real other process takes the only slot and is killed while holding it: the kernel releases the flock.
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from runner_trio._shared_caps import SharedCaps
        caps = SharedCaps(Path({str(tmp_path)!r}), max_per_tenant=8, max_per_extension=1)
        assert caps.try_take(("tenant", "t"), 8) is not None
        assert caps.try_take(("extension", "t", "e"), 1) is not None
        print("held", flush=True)
        time.sleep(600)
    """)
    child = await trio.lowlevel.open_process([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                             env=os.environ.copy())
    try:
        assert child.stdout is not None
        received = b""
        with trio.fail_after(60):
            while not received.endswith(b"\n"):
                chunk = await child.stdout.receive_some()
                assert chunk, "the child exited before it held the slot"
                received += chunk
        assert received == b"held\n"
        admission = _worker(tmp_path)
        with pytest.raises(Overloaded):
            async with admission.slot("t", "e"):
                pass
        child.kill()
        await child.wait()
        async with admission.slot("t", "e"):
            pass
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await child.stdout.aclose()  # type: ignore[union-attr]


def test_one_worker_never_takes_its_own_slot_twice_and_reuses_the_files(tmp_path: Path) -> None:
    # A worker keeps its slot files open: a second flock on its own file would succeed, so it must skip the
    # slots it holds itself; another worker (its own open files) is still excluded by the kernel.
    worker, other = (SharedCaps(tmp_path, max_per_tenant=2, max_per_extension=2) for _ in range(2))
    key = ("extension", "t", "e")
    assert worker.try_take(key, 2) == 0
    assert worker.try_take(key, 2) == 1
    assert worker.try_take(key, 2) is None
    assert other.try_take(key, 2) is None
    worker.give_back(key, 0)
    assert other.try_take(key, 2) == 0
    assert worker.try_take(key, 2) is None
    worker.give_back(key, 1)
    assert worker.try_take(key, 2) == 1
    assert sorted(p.name.rsplit(".", 2)[1] for p in tmp_path.iterdir()) == ["0", "1"]  # one file per slot
    worker.close()
    other.close()
