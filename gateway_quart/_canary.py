"""Canary rollouts: route part of an extension's traffic to a new version, judge it, promote or roll back.

A canary (``registry.Canary``, migration 4) names an extension, the tenants it concerns, the version their
installs run (``from``) and the one on trial (``to``). Three parts, all in the gateway:

* **Routing** (:func:`choose_version`, hot path): before the proxy calls a runner it asks which version serves
  this request. A percentage canary sends a request to the new version when
  ``bucket(canary id, request key) < percent * 100`` (buckets ``0..9999``, a keyed BLAKE2b hash), so one key
  always lands on the same side and the share over many keys approaches ``percent``. The request key is the
  authenticated user's id, else the :data:`CANARY_KEY_HEADER` header, else the request id (see
  :func:`request_key`). A tenant-list canary sends every request of its tenants to the new version; the
  other tenants' requests of the extension are its "old" arm. The running canaries are kept in memory
  (:class:`CanaryController`, reloaded every ``GATEWAY_CANARY_INTERVAL_S`` and at once after a local change),
  so routing costs a dict lookup and no registry round trip.
* **Measuring** (:class:`CanaryStats`): per canary and arm (``old``/``new``) the requests, errors (a runner
  error other than overload, a 5xx, or no runner answer), timeouts and latency samples since the canary
  started (a canary's window is its lifetime). Each gateway counts what it routed; with ``GATEWAY_REDIS_URL``
  the evaluator adds its counts to the fleet's totals in Redis at every tick and judges those instead
  (``_canary_fleet.py``), so every gateway decides on the same numbers.
* **Deciding** (:meth:`CanaryController.evaluate_now`, run by the background task every interval): once the
  new arm has ``min_requests`` and its error rate, timeout rate or p99 breaks the budget, the canary is rolled
  back at once, with the reason (``error rate 0.31 > 0.05 over 57 requests``); when the window ends with the
  budget held it is promoted: each target install moves to the new version through
  ``_rollout.set_install_version`` (action ``canary_promote``; a roll-back, which moves nothing, is recorded
  there as ``canary_rollback`` with its reason). A window that ends with fewer than ``min_requests`` on the new
  version is rolled back as inconclusive. The decision is a conditional registry update, so one gateway of a
  fleet makes it.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, NamedTuple, final

import trio

from ._errors import RecordNotFound
from ._rollout import set_install_version
from ._settings import DEFAULT_CANARY_INTERVAL_S
from .registry import (
    CANARY_PROMOTED,
    CANARY_ROLLED_BACK,
    Canary,
    CanaryBudget,
    Install,
    Registry,
    Version,
    utc_now,
)

if TYPE_CHECKING:
    from ._canary_fleet import FleetCanaryStats
    from ._state import GatewayState

__all__ = [
    "ARM_NEW",
    "ARM_OLD",
    "BUCKETS",
    "CANARY_KEY_HEADER",
    "DEFAULT_CANARY_INTERVAL_S",
    "ActiveCanary",
    "ArmStats",
    "CanaryController",
    "CanaryStats",
    "Route",
    "canary_bucket",
    "choose_version",
    "judge",
    "request_key",
]

log = logging.getLogger("gateway_quart.canary")

CANARY_KEY_HEADER: Final = "x-canary-key"
"""The request key of a call without a user id (the proxy always has one; other callers of the router may not)."""
BUCKETS: Final = 10_000
"""Assignment granularity: a percentage has two decimals."""
MAX_LATENCY_SAMPLES: Final = 4096
"""Latency samples kept per arm (the most recent): p99 over them; bounded memory per canary."""
ARM_OLD: Final = "old"
ARM_NEW: Final = "new"
_OVERLOADED: Final = 429


def canary_bucket(canary_id: str, key: str) -> int:
    """The bucket (``0..BUCKETS-1``) of ``key`` in canary ``canary_id``: stable, and independent across canaries
    (a user on the new side of one canary is not on the new side of every canary)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, key=canary_id.encode("utf-8")[:64]).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def request_key(user_id: str | None, header: str | None, request_id: str) -> str:
    """What a request is assigned by: the user id, else the :data:`CANARY_KEY_HEADER` header's value, else the
    request id (a caller with neither is assigned per request)."""
    if user_id:
        return f"user:{user_id}"
    if header and header.strip():
        return f"key:{header.strip()[:256]}"
    return f"request:{request_id}"


@dataclass(frozen=True)
class ActiveCanary:
    """A running canary as the router holds it: the record, its new version, and the tenants it targets."""

    canary: Canary
    to_version: Version
    tenants: frozenset[str]
    threshold: int
    """Buckets below this go to the new version (``percent * 100``)."""

    @classmethod
    def of(cls, canary: Canary, to_version: Version) -> ActiveCanary:
        return cls(canary, to_version, frozenset(canary.target_tenants), round(canary.percent * BUCKETS / 100))


def choose_version(canary: ActiveCanary, install: Install, request_key: str) -> Version:
    """The version that serves this request of ``install``: the canary's new version or the install's own.

    Only an install the canary targets, still at the canary's ``from`` version, is routed (an install moved by
    hand since the canary started keeps its version).
    """
    if install.tenant_id not in canary.tenants or install.version.id != canary.canary.from_version_id:
        return install.version
    if canary.canary.tenants is not None or canary_bucket(canary.canary.id, request_key) < canary.threshold:
        return canary.to_version
    return install.version


class Route(NamedTuple):
    """Where one request goes: the version, and the canary arm it counts for (``None``: no canary)."""

    version: Version
    canary_id: str | None = None
    arm: str | None = None


@final
class ArmStats:
    """Counts of one arm of one canary: requests, errors, timeouts, and the latest latency samples."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.timeouts = 0
        self.latencies: deque[float] = deque(maxlen=MAX_LATENCY_SAMPLES)

    def add(self, *, error: bool, timed_out: bool, latency_ms: float) -> None:
        self.requests += 1
        self.errors += error
        self.timeouts += timed_out
        self.latencies.append(latency_ms)

    def merge(self, requests: int, errors: int, timeouts: int, latencies: Sequence[float]) -> None:
        self.requests += requests
        self.errors += errors
        self.timeouts += timeouts
        self.latencies.extend(latencies)

    @property
    def p99_ms(self) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]

    def view(self) -> dict[str, Any]:
        requests = self.requests
        p99 = self.p99_ms
        return {
            "requests": requests, "errors": self.errors, "timeouts": self.timeouts,
            "error_rate": round(self.errors / requests, 4) if requests else 0.0,
            "timeout_rate": round(self.timeouts / requests, 4) if requests else 0.0,
            "p99_ms": None if p99 is None else round(p99, 1),
        }


@final
class CanaryStats:
    """This process's observations per (canary, arm): totals, and the part not yet added to the fleet's."""

    def __init__(self) -> None:
        self._totals: dict[tuple[str, str], ArmStats] = {}
        self._pending: dict[tuple[str, str], ArmStats] = {}

    def record(self, canary_id: str, arm: str, *, error: bool, timed_out: bool, latency_ms: float) -> None:
        for table in (self._totals, self._pending):
            stats = table.get((canary_id, arm))
            if stats is None:
                stats = table[(canary_id, arm)] = ArmStats()
            stats.add(error=error, timed_out=timed_out, latency_ms=latency_ms)

    def arms(self, canary_id: str) -> dict[str, ArmStats]:
        return {arm: self._totals.get((canary_id, arm)) or ArmStats() for arm in (ARM_OLD, ARM_NEW)}

    def take_pending(self) -> dict[tuple[str, str], ArmStats]:
        """The observations since the last call (for the fleet's totals)."""
        pending, self._pending = self._pending, {}
        return pending

    def restore(self, pending: Mapping[tuple[str, str], ArmStats]) -> None:
        """Put back observations the fleet did not take (they are added at the next tick)."""
        for key, stats in pending.items():
            mine = self._pending.get(key)
            if mine is None:
                mine = self._pending[key] = ArmStats()
            mine.merge(stats.requests, stats.errors, stats.timeouts, stats.latencies)

    def forget(self, keep: set[str]) -> None:
        """Drop the counts of canaries no longer running."""
        for table in (self._totals, self._pending):
            for key in [k for k in table if k[0] not in keep]:
                del table[key]


def judge(canary: Canary, new: ArmStats, now: datetime) -> tuple[str, str] | None:
    """``(state, reason)`` when the canary is decided now, else ``None`` (keep watching).

    The new arm breaks its budget once it has ``min_requests`` and a rate or its p99 is over the limit (rolled
    back at once); at the end of the window a budget held is a promotion, too few requests a roll-back.
    """
    budget: CanaryBudget = canary.budget
    n = new.requests
    if n >= budget.min_requests:
        error_rate, timeout_rate, p99 = new.errors / n, new.timeouts / n, new.p99_ms
        if error_rate > budget.max_error_rate:
            return CANARY_ROLLED_BACK, f"error rate {error_rate:.2f} > {budget.max_error_rate:g} over {n} requests"
        if timeout_rate > budget.max_timeout_rate:
            return (CANARY_ROLLED_BACK,
                    f"timeout rate {timeout_rate:.2f} > {budget.max_timeout_rate:g} over {n} requests")
        if budget.max_p99_ms is not None and p99 is not None and p99 > budget.max_p99_ms:
            return CANARY_ROLLED_BACK, f"p99 {p99:.0f} ms > {budget.max_p99_ms:g} ms over {n} requests"
    if now < _window_end(canary):
        return None
    if n < budget.min_requests:
        return (CANARY_ROLLED_BACK, f"only {n} requests on the new version in {canary.window_s} s "
                f"(min_requests {budget.min_requests}): not enough to promote")
    return (CANARY_PROMOTED, f"budget held over {n} requests in {canary.window_s} s: error rate "
            f"{new.errors / n:.2f}, timeout rate {new.timeouts / n:.2f}")


def _window_end(canary: Canary) -> datetime:
    started = datetime.fromisoformat(canary.started_at.replace("Z", "+00:00"))
    return started + timedelta(seconds=canary.window_s)


@final
class CanaryController:
    """The running canaries of this gateway: routing table, observations, and the evaluator.

    Args:
        registry: where canaries are recorded.
        interval_s: how often :meth:`run` reloads and judges (0: :meth:`run` returns at once; call
            :meth:`evaluate_now` yourself).
        fleet: the fleet's totals in Redis (``GATEWAY_REDIS_URL``), or ``None`` to judge this process's counts.
        clock: the current time (tests move it past a window's end).
    """

    def __init__(
        self,
        registry: Registry,
        *,
        interval_s: float = DEFAULT_CANARY_INTERVAL_S,
        fleet: FleetCanaryStats | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._registry = registry
        self._interval_s = interval_s
        self._fleet = fleet
        self._clock = clock
        self._by_extension: dict[str, tuple[ActiveCanary, ...]] = {}
        self._versions: dict[str, Version] = {}  # versions never change: kept for good
        self._lock = trio.Lock()  # one evaluation at a time
        self._refreshing = trio.Lock()  # reloads in order: a slow one never overwrites a newer table
        self.stats = CanaryStats()

    # hot path ------------------------------------------------------------------------------------------
    def route(self, install: Install, user_id: str | None, key_header: str | None, request_id: str) -> Route:
        """The version for one request of ``install`` (no I/O; the request key is built only when needed)."""
        actives = self._by_extension.get(install.extension_id)
        if not actives:
            return Route(install.version)
        for active in actives:
            if install.tenant_id in active.tenants:
                key = request_key(user_id, key_header, request_id) if active.canary.tenants is None else ""
                version = choose_version(active, install, key)
                if install.version.id != active.canary.from_version_id:
                    return Route(version)
                return Route(version, active.canary.id, ARM_NEW if version.id == active.to_version.id else ARM_OLD)
        for active in actives:  # the other tenants of a tenant-list canary are its baseline
            if active.canary.tenants is not None and install.version.id == active.canary.from_version_id:
                return Route(install.version, active.canary.id, ARM_OLD)
        return Route(install.version)

    def observe(self, route: Route, *, status: int, error: bool, timed_out: bool, latency_ms: float) -> None:
        """Count one answered (or failed) request of a canary arm; ``error`` is a runner-side failure."""
        if route.canary_id is None or route.arm is None:
            return
        failed = not timed_out and ((error and status != _OVERLOADED) or status >= 500)
        self.stats.record(route.canary_id, route.arm, error=failed, timed_out=timed_out, latency_ms=latency_ms)

    # registry side -------------------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Reload the running canaries (one query; versions are looked up once each)."""
        async with self._refreshing:
            running = await self._registry.list_running_canaries()
            table: dict[str, list[ActiveCanary]] = {}
            for canary in running:
                version = self._versions.get(canary.to_version_id)
                if version is None:
                    try:
                        version = self._versions[canary.to_version_id] = await self._registry.get_version(
                            canary.to_version_id)
                    except RecordNotFound:
                        continue
                table.setdefault(canary.extension_id, []).append(ActiveCanary.of(canary, version))
            self._by_extension = {ext: tuple(actives) for ext, actives in table.items()}
            self.stats.forget({canary.id for canary in running})

    def active(self, canary_id: str) -> ActiveCanary | None:
        for actives in self._by_extension.values():
            for active in actives:
                if active.canary.id == canary_id:
                    return active
        return None

    async def arms(self, canary_id: str) -> dict[str, ArmStats]:
        """The per-arm counts the evaluator judges: the fleet's when there is one, else this process's."""
        if self._fleet is not None:
            try:
                return await self._fleet.arms(canary_id)
            except Exception as exc:  # the fleet's totals are unreadable: this gateway's own counts instead
                log.warning("canary %s: fleet totals unreadable, judging this gateway's counts: %s", canary_id, exc)
        return self.stats.arms(canary_id)

    async def evaluate_now(self, st: GatewayState, now: datetime | None = None) -> list[Canary]:
        """Reload, then judge every running canary once; returns the canaries decided by this call."""
        async with self._lock:
            if self._fleet is not None:
                pending = self.stats.take_pending()
                try:
                    await self._fleet.add(pending)
                except Exception as exc:  # kept for the next tick; judged on this gateway's counts meanwhile
                    self.stats.restore(pending)
                    log.warning("canary counts not added to the fleet's: %s", exc)
            await self.refresh()
            moment = now or self._clock()
            decided: list[Canary] = []
            for actives in list(self._by_extension.values()):
                for active in actives:
                    arms = await self.arms(active.canary.id)
                    verdict = judge(active.canary, arms[ARM_NEW], moment)
                    if verdict is None:
                        continue
                    done = await self.decide(st, active.canary, verdict[0], verdict[1], arms)
                    if done is not None:
                        decided.append(done)
            if decided:
                await self.refresh()
            return decided

    async def decide(self, st: GatewayState, canary: Canary, state: str, reason: str,
                     arms: Mapping[str, ArmStats] | None = None) -> Canary | None:
        """End ``canary`` as ``state`` (``None`` when it had already ended) and apply it to the installs."""
        arms = arms if arms is not None else await self.arms(canary.id)
        stats = {arm: counts.view() for arm, counts in arms.items()}
        done = await self._registry.finish_canary(canary.id, state=state, reason=reason, decided_at=utc_now(),
                                                  stats=stats)
        if done is None:
            return None
        log.warning("canary %s of %s %s: %s", canary.id, canary.extension_id, state, reason)
        if state in (CANARY_PROMOTED, CANARY_ROLLED_BACK):
            await self._apply(st, done)
        await self.refresh()
        return done

    async def _apply(self, st: GatewayState, canary: Canary) -> None:
        """Promotion moves each target install still at ``from`` to ``to``; a roll-back leaves them at ``from``
        (recorded as a version change to ``from``, so the install's history shows it)."""
        promote = canary.state == CANARY_PROMOTED
        target = await st.registry.get_version(canary.to_version_id if promote else canary.from_version_id)
        action = "canary_promote" if promote else "canary_rollback"
        for tenant_id in canary.target_tenants:
            try:
                install = await st.registry.get_install(tenant_id, canary.extension_id)
            except RecordNotFound:
                continue
            if install.version.id != canary.from_version_id:
                log.warning("canary %s: %s/%s moved to %s meanwhile; left as it is", canary.id, tenant_id,
                            canary.extension_id, install.version.version)
                continue
            try:
                await set_install_version(st, tenant_id, canary.extension_id, target, actor=f"canary:{canary.id}",
                                          action=action, reason=canary.reason or "")
            except Exception as exc:  # the decision stands; the other installs still get it
                log.error("canary %s: %s of %s/%s to %s failed (move it by hand): %s", canary.id, action, tenant_id,
                          canary.extension_id, target.version, exc)

    async def aclose(self) -> None:
        if self._fleet is not None:
            await self._fleet.aclose()

    async def run(self, st: GatewayState, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Judge the running canaries every ``interval_s`` until cancelled (failures are logged, never fatal)."""
        task_status.started()
        if self._interval_s <= 0:
            return
        while True:
            try:
                await self.evaluate_now(st)
            except Exception as exc:  # the next tick tries again; a registry outage must not end the evaluator
                log.error("canary evaluation failed: %s", exc)
            await trio.sleep(self._interval_s)
