"""A runner process's storage writer for ``test_storage.py``'s cross-process test, in a module of its own so
that a spawned process imports only what it runs (not pytest nor the test module)."""

from __future__ import annotations

import trio

from runner_trio.capabilities import HostCallError
from runner_trio.capabilities.storage import PostgresStorage
from runner_trio.engine import HostScope


def increment_in_runner(url: str, writers: int, rounds: int) -> list[int]:
    """One runner process: its own pool and trio loop, ``writers`` tasks each doing ``rounds`` CAS increments."""

    async def main() -> list[int]:
        store = PostgresStorage(url, max_connections=writers)
        scope = HostScope("tenant-1", "ext-1", install_id="inst-a", request_id="r", deadline=trio.current_time() + 60)
        landed: list[int] = []

        async def writer() -> None:
            for _ in range(rounds):
                while True:
                    current = await store.get(scope, "ns", "counter")
                    try:
                        stored = await store.put(scope, "ns", "counter", str(int(current.value) + 1).encode(),
                                                 if_revision=current.revision)
                    except HostCallError as exc:
                        if exc.variant != "conflict":
                            raise
                        continue
                    landed.append(stored.revision)
                    break

        try:
            async with trio.open_nursery() as nursery:
                for _ in range(writers):
                    nursery.start_soon(writer)
        finally:
            await store.aclose()
        return landed

    return trio.run(main)
