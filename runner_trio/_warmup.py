"""Warm-up at start: fetch, verify and compile a list of bundles before the runner says it is ready.

A new replica that joins a fleet under traffic would otherwise pay a fetch and a compile (seconds for a JS
component) on the first request for every bundle. With ``RUNNER_WARMUP_HASHES`` set, ``/readyz`` answers 503
``warming`` until each listed bundle is warm (in the compiled cache, loaded from the shared precompiled artifact
when ``RUNNER_PRECOMPILE_KEY`` is set, so a replica does not recompile what another already built) or has
failed, or until ``RUNNER_WARMUP_TIMEOUT_S`` has passed. A bundle that fails to warm (gone from the store,
untrusted) is logged and counted, and does not hold readiness back: the request that needs it gets the error.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import trio

__all__ = ["DEFAULT_WARMUP_CONCURRENCY", "DEFAULT_WARMUP_TIMEOUT_S", "WarmUp"]

log = logging.getLogger("runner_trio.warmup")

DEFAULT_WARMUP_TIMEOUT_S: Final = 300
# Compiles are CPU-bound and run in worker threads: two at a time keeps a small machine responsive.
DEFAULT_WARMUP_CONCURRENCY: Final = 2


@dataclass
class WarmUp:
    """Warms ``hashes`` (bare hex digests) with ``warm`` once, in :meth:`run`; :attr:`pending` says how far it is."""

    hashes: Sequence[str]
    warm: Callable[[str], Awaitable[None]]
    timeout_s: float = DEFAULT_WARMUP_TIMEOUT_S
    concurrency: int = DEFAULT_WARMUP_CONCURRENCY
    warmed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    timed_out: bool = False

    @property
    def pending(self) -> int:
        """Bundles still to warm (0 once done, failed or timed out)."""
        if self.timed_out:
            return 0
        return len(self.hashes) - len(self.warmed) - len(self.failed)

    @property
    def ready(self) -> bool:
        return self.pending == 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        if not self.hashes:
            return
        started = trio.current_time()
        limiter = trio.CapacityLimiter(max(1, self.concurrency))
        with trio.move_on_after(self.timeout_s) as scope:
            async with trio.open_nursery() as nursery:
                for hex_digest in self.hashes:
                    nursery.start_soon(self._one, hex_digest, limiter)
        if scope.cancelled_caught:
            self.timed_out = True
            log.warning("warm-up timed out after %ss: %d of %d bundles warm, ready anyway (RUNNER_WARMUP_TIMEOUT_S)",
                        self.timeout_s, len(self.warmed), len(self.hashes))
            return
        log.info("warm-up done in %.2fs: %d warm, %d failed", trio.current_time() - started,
                 len(self.warmed), len(self.failed))

    async def _one(self, hex_digest: str, limiter: trio.CapacityLimiter) -> None:
        async with limiter:
            try:
                await self.warm(hex_digest)
            except Exception as exc:
                reason = getattr(exc, "code", None) or type(exc).__name__
                self.failed[hex_digest] = str(reason)
                log.warning("warm-up of sha256:%s failed: %s", hex_digest, reason)
            else:
                self.warmed.append(hex_digest)
