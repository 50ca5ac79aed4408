"""Least-connections accept between the processes that share one listening socket.

A service run as several worker processes on one port (the runner's ``RUNNER_WORKERS``) has two ways to share
it, and neither spreads few long-lived connections evenly on its own:

- ``SO_REUSEPORT`` (each process its own listening socket) hashes every new connection to one of them. With
  few kept-alive connections, the usual case behind a gateway's connection pool, the split is as random as
  coin flips: 4 connections over 2 processes went 2:2, 3:1 or 4:0 from one 4 s slice to the next, and one
  process then served three times what the other did, with the tail latency of a queue (p99 at 4 clients 8 ms
  at 2:2, 22-29 ms at 3:1, 33-39 ms at 4:0; docs/benchmarks.md).
- One shared accept queue lets whichever process wakes first take each connection, often the same one.

So the processes share one listening socket and a small table, one slot per process: how many connections it
holds open now and how many it has accepted so far. A process takes a pending connection only when its
``(open, accepted)`` pair is the least of the live processes' (ties go to whoever accepts first): least
connections first (nginx's ``least_conn``, HAProxy's ``leastconn``), round robin between equally loaded ones.
The others leave the connection in the queue for it, looking again every :data:`ACCEPT_POLL_S`; after
:data:`ACCEPT_FALLBACK_S` they take it anyway, so a process that is stuck or gone (its slot not cleared yet)
delays a new connection by that much at most, and never strands it.

The table is a file of signed 64-bit integers mapped into every process (``mmap``, ``MAP_SHARED``); each
process writes only its own slot, so there is no lock. A read may see another slot a moment old: the choice is
a heuristic, never a correctness condition. A slot of -1 means "not accepting" (not started yet, draining, or
exited: the supervisor clears the slot of a process that exits, and its replacement takes that slot).
"""

from __future__ import annotations

import mmap
from array import array
from pathlib import Path
from typing import Final, final

__all__ = ["ACCEPT_FALLBACK_S", "ACCEPT_POLL_S", "ConnectionBalance"]

ACCEPT_POLL_S: Final = 0.001
"""How often a process that is not the least loaded looks again at a connection left in the queue."""
ACCEPT_FALLBACK_S: Final = 0.025
"""How long a pending connection waits for the least loaded process before any process takes it."""
_ABSENT: Final = -1
_FIELDS: Final = 2  # open connections, accepted so far


@final
class ConnectionBalance:
    """One process's view of the shared table: ``may_accept()`` before taking a connection, ``opened()`` /
    ``closed()`` around each one, ``join()`` once accepting and ``leave()`` when it stops.

    Args:
        path: the table, made by :meth:`create` for ``count`` processes.
        index: this process's slot, 0 to ``count - 1``.
    """

    def __init__(self, path: Path, index: int) -> None:
        with open(path, "r+b") as file:
            self._map = mmap.mmap(file.fileno(), 0)
        self._table = memoryview(self._map).cast("q")
        self._count = len(self._table) // _FIELDS
        if not 0 <= index < self._count:
            raise ValueError(f"slot {index} is outside a table of {self._count}")
        self._open = index * _FIELDS
        self._accepted = self._open + 1

    @staticmethod
    def create(path: Path, count: int) -> None:
        """Write a table of ``count`` slots, all absent (before any process of it starts)."""
        path.write_bytes(array("q", (_ABSENT, 0) * count).tobytes())

    @staticmethod
    def clear(path: Path, index: int) -> None:
        """Mark slot ``index`` absent (its process exited; the supervisor calls this before replacing it)."""
        balance = ConnectionBalance(path, index)
        try:
            balance.leave()
        finally:
            balance.close()

    def join(self) -> None:
        """Start accepting: this process's slot counts from here (no connection open)."""
        self._table[self._accepted] = 0
        self._table[self._open] = 0

    def leave(self) -> None:
        """Stop accepting: the others no longer wait for this process to take a connection."""
        self._table[self._open] = _ABSENT

    def opened(self) -> None:
        if self._table[self._open] >= 0:
            self._table[self._open] += 1
        self._table[self._accepted] += 1

    def closed(self) -> None:
        if self._table[self._open] > 0:
            self._table[self._open] -= 1

    def may_accept(self) -> bool:
        """Whether this process is (one of) the least loaded of the live ones."""
        table = self._table
        mine = (table[self._open], table[self._accepted])
        if mine[0] < 0:
            return True  # not in the table (draining): serve what is handed over, never hold others up
        for slot in range(0, len(table) - 1, _FIELDS):
            held = table[slot]
            if held >= 0 and (held, table[slot + 1]) < mine:
                return False
        return True

    def snapshot(self) -> list[tuple[int, int]]:
        """Every slot's ``(open, accepted)``; ``open`` is -1 for a process not accepting."""
        table = self._table
        return [(table[slot], table[slot + 1]) for slot in range(0, len(table) - 1, _FIELDS)]

    def close(self) -> None:
        self._table.release()
        self._map.close()
