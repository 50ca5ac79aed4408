"""Child process for the crash tests: does one cache operation and dies (os._exit) at a chosen step.

Usage: python crash_child.py ROOT HEX SCENARIO

The process exits with status 17 at the crash point, without any cleanup, as a killed runner would.
A scenario is ``<operation>:<step>``; the step is the n-th ``os.rename``/``os.replace`` of the operation,
``before`` or ``after`` it runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from cache import DiskCache

CRASH_STATUS = 17


def crash_on(name: str, nth: int, when: str) -> None:
    """Make the n-th call of ``os.<name>`` exit the process before or after it runs."""
    real: Callable[..., Any] = getattr(os, name)
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == nth and when == "before":
            os._exit(CRASH_STATUS)
        result = real(*args, **kwargs)
        if calls == nth and when == "after":
            os._exit(CRASH_STATUS)
        return result

    setattr(os, name, wrapper)


async def main(root: Path, hex_digest: str, scenario: str) -> None:
    operation, step = scenario.split(":")
    async with DiskCache(root) as cache:

        async def fill(dest: Path) -> None:
            (dest / "entry.wasm").write_bytes(b"\0asm" + b"w" * 100)
            if operation == "fill" and step == "mid-fill":
                os._exit(CRASH_STATUS)
            if operation == "fill" and step == "hang":
                print("filling", flush=True)
                await trio.sleep_forever()
            (dest / "ui").mkdir()
            (dest / "ui" / "index.html").write_bytes(b"<html>")

        async def fill_ui(dest: Path) -> None:
            (dest / "index.html").write_bytes(b"<p>ui")
            if step == "mid-fill":
                os._exit(CRASH_STATUS)

        if operation != "fill":
            # The entry already exists from an earlier (complete) run.
            async with cache.entry(hex_digest, fill):
                pass
        if step not in ("mid-fill", "hang", "none"):
            name, nth, when = step.split("-")
            crash_on(name, int(nth), when)
        async with cache.entry(hex_digest, fill) as entry:
            if operation == "add":
                await entry.add_file("precompiled/t.cwasm", b"artifact" * 10)
            elif operation == "subtree":
                await entry.ensure_subtree("site", fill_ui)
            elif operation == "remove":
                await entry.remove_file("ui/index.html")
    print("completed", flush=True)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]), sys.argv[2], sys.argv[3])
