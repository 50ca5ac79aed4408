"""Per-tenant budgets, enforced in admission: a tenant that used up a budget for the current period gets 429.

A budget limits one counter of a tenant (``invocations``, ``errors`` or one of :data:`contract.USAGE_FIELDS`,
summed over all its extensions) per fixed UTC period (``minute``, ``hour``, ``day``). The proxy calls
:meth:`BudgetGuard.admit` before it calls a runner: when a counter is at or over its limit the call is refused
with :class:`QuotaExceeded` (``retry_after_s``: until the period ends); otherwise an ``invocations`` counter
counts the call at once (so concurrent calls cannot overshoot it). The other counters grow when answers come
back (:meth:`BudgetGuard.consume`), so a budget on guest CPU lets through the calls in flight when it is
reached and refuses the next ones.

A counter starts at the registry's sum for its period when the tenant's budgets are first loaded (usage before
the budget was set counts). The registry rows (``_usage.py``) are the billing record; these counters are for
admission only: cheap (no
database on the request path; a tenant's budgets are cached ``cache_ttl_s``), kept in this process, and, with
``GATEWAY_REDIS_URL``, in Redis for the whole fleet (one script call per admitted call of a tenant with budgets;
answered usage is pushed in batches every ``push_interval_s``). When Redis fails, admission falls back to this
process's counters (looser by the number of gateways, never refusing everything). Tenants without budgets cost
a cache lookup.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Final, final

import trio
from cachetools import LRUCache, TTLCache

from contract import USAGE_FIELDS, ExecuteResult

from ._errors import QuotaExceeded, RegistryError
from ._fleet import FleetState, FleetUnavailable
from ._usage import failed, minute_of
from .registry import Budget, Registry, UsageBucket

log = logging.getLogger("gateway_quart.budgets")

BUDGET_NAMES: Final = ("invocations", "errors", *USAGE_FIELDS)
PERIOD_SECONDS: Final = {"minute": 60, "hour": 3600, "day": 86400}
"""The length of each of :data:`~gateway_quart.registry.BUDGET_PERIODS`."""
DEFAULT_BUDGET_CACHE_TTL_S: Final = 5.0
DEFAULT_PUSH_INTERVAL_S: Final = 0.2
DEFAULT_MAX_COUNTERS: Final = 100_000
"""Local counters kept at most (least recently used go first; a forgotten one restarts at zero)."""
DEFAULT_MAX_TENANTS: Final = 100_000
_EXPIRY_GRACE_S: Final = 60


@final
class BudgetGuard:
    """Admission against tenant budgets (see the module docstring).

    Args:
        registry: where budgets are read from.
        fleet: the fleet's Redis (``GATEWAY_REDIS_URL``), or None for this process's counters only.
        cache_ttl_s: how long a tenant's budgets are reused (0: read on every admission).
        push_interval_s: how often :meth:`run` pushes answered usage to Redis.
        clock: seconds since the epoch (``time.time``): periods are UTC minutes, hours and days.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        fleet: FleetState | None = None,
        cache_ttl_s: float = DEFAULT_BUDGET_CACHE_TTL_S,
        push_interval_s: float = DEFAULT_PUSH_INTERVAL_S,
        max_counters: int = DEFAULT_MAX_COUNTERS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._fleet = fleet
        self._ttl = cache_ttl_s
        self._interval = push_interval_s
        self._clock = clock
        self._cache: TTLCache[str, tuple[Budget, ...]] | None = (
            TTLCache(maxsize=DEFAULT_MAX_TENANTS, ttl=cache_ttl_s, timer=time.monotonic) if cache_ttl_s > 0 else None)
        self._known: LRUCache[str, tuple[Budget, ...]] = LRUCache(maxsize=DEFAULT_MAX_TENANTS)
        self._counters: LRUCache[tuple[str, str, str, int], float] = LRUCache(maxsize=max_counters)
        self._seeds: LRUCache[tuple[str, str, str, int], float] = LRUCache(maxsize=max_counters)
        self._push: dict[str, tuple[float, int]] = {}
        self._refused = self._fallbacks = 0

    async def budgets(self, tenant_id: str) -> tuple[Budget, ...]:
        """The tenant's budgets (cached ``cache_ttl_s``; when the registry fails, the ones last read).

        Raises:
            RegistryError: the registry failed and this process never read the tenant's budgets.
        """
        if self._cache is not None:
            cached = self._cache.get(tenant_id)
            if cached is not None:
                return cached
        try:
            loaded = tuple(await self._registry.get_budgets(tenant_id))
            if loaded:
                await self._seed(tenant_id, loaded, self._clock())
        except RegistryError:
            stale = self._known.get(tenant_id)
            if stale is None:
                raise
            return stale  # a registry blip: the budgets last read still hold (retried on the next call)
        with contextlib.suppress(ValueError):
            if self._cache is not None:
                self._cache[tenant_id] = loaded
            self._known[tenant_id] = loaded
        return loaded

    async def _seed(self, tenant_id: str, budgets: tuple[Budget, ...], now: float) -> None:
        """Start the counters of the current periods that this process has not counted yet at what the registry
        holds: usage before this gateway started counting (or before the budget was set) counts too. With Redis
        the seed applies only to a counter the fleet has not started either (see ``_fleet.py``)."""
        missing = [b for b in budgets if self._local_key(tenant_id, b, now) not in self._seeds]
        if not missing:
            return
        longest = max(PERIOD_SECONDS[b.period] for b in missing)
        buckets = await self._registry.usage_buckets(tenant_id, start=minute_of(now // longest * longest),
                                                     end=minute_of(now + 60), granularity="minute")
        for budget in missing:
            since = minute_of(self._window(budget, now) * PERIOD_SECONDS[budget.period])
            total = sum(_counter(bucket, budget.name) for bucket in buckets if bucket.start >= since)
            key = self._local_key(tenant_id, budget, now)
            with contextlib.suppress(ValueError):
                self._seeds[key] = total
                if key not in self._counters:
                    self._counters[key] = total

    def forget(self, tenant_id: str) -> None:
        """Drop the cached budgets of ``tenant_id`` (after this gateway changed them)."""
        if self._cache is not None:
            self._cache.pop(tenant_id, None)
        self._known.pop(tenant_id, None)

    def used(self, tenant_id: str, budget: Budget) -> float:
        """This process's counter of ``budget`` in the current period (tests, diagnostics)."""
        return self._counters.get(self._local_key(tenant_id, budget, self._clock()), 0.0)

    async def admit(self, tenant_id: str) -> None:
        """Refuse the call when one of the tenant's budgets is used up; count it as an invocation otherwise.

        Raises:
            QuotaExceeded: the first budget (in name order) at or over its limit.
            RegistryError: the budgets could not be read (the caller answers 503, as for any registry failure).
        """
        budgets = await self.budgets(tenant_id)
        if not budgets:
            return
        now = self._clock()
        if self._fleet is not None:
            checks = [(self._fleet.usage_key(tenant_id, b.name, b.period, self._window(b, now)), b.limit,
                       b.name == "invocations", self._expiry_ms(b, now),
                       self._seeds.get(self._local_key(tenant_id, b, now), -1.0)) for b in budgets]
            try:
                index, used = await self._fleet.admit_usage(checks)
            except FleetUnavailable as exc:
                if self._fallbacks == 0:
                    log.warning("budgets fall back to this gateway's counters: %s", exc)
                self._fallbacks += 1
            else:
                if index:
                    self._refuse(budgets[index - 1], used, now)
                self._count_invocation(tenant_id, budgets, now)
                return
        for budget in budgets:
            used = self._counters.get(self._local_key(tenant_id, budget, now), 0.0)
            if used >= budget.limit:
                self._refuse(budget, used, now)
        self._count_invocation(tenant_id, budgets, now)

    def consume(self, tenant_id: str, result: ExecuteResult) -> None:
        """Add an answer's usage (and its error) to the tenant's budget counters; never blocks or raises."""
        budgets = self._known.get(tenant_id)
        if not budgets:
            return
        now = self._clock()
        usage = result.usage or {}
        for budget in budgets:
            if budget.name == "invocations":
                continue
            amount = (1.0 if failed(result) else 0.0) if budget.name == "errors" else float(usage.get(budget.name, 0))
            if amount <= 0:
                continue
            self._add_local(self._local_key(tenant_id, budget, now), amount)
            if self._fleet is not None:
                key = self._fleet.usage_key(tenant_id, budget.name, budget.period, self._window(budget, now))
                pending, _ = self._push.get(key, (0.0, 0))
                self._push[key] = (pending + amount, self._expiry_ms(budget, now))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Push answered usage to Redis every ``push_interval_s`` until cancelled (no-op without Redis)."""
        task_status.started()
        while True:
            await trio.sleep(self._interval)
            await self.flush()

    async def flush(self) -> None:
        """Push the pending increments to Redis now; on failure they are dropped (the local counters keep them)."""
        if self._fleet is None or not self._push:
            return
        batch, self._push = self._push, {}
        try:
            await self._fleet.add_usage(batch)
        except FleetUnavailable as exc:
            log.warning("budget counters not pushed to Redis (%d keys): %s", len(batch), exc)

    def statistics(self) -> dict[str, int]:
        return {"refused": self._refused, "fallbacks": self._fallbacks, "counters": len(self._counters)}

    # --------------------------------------------------------------------------------------------------------
    def _refuse(self, budget: Budget, used: float, now: float) -> None:
        self._refused += 1
        period = PERIOD_SECONDS[budget.period]
        retry_after = max(1, math.ceil((self._window(budget, now) + 1) * period - now))
        raise QuotaExceeded(budget=budget.name, limit=budget.limit, used=used, period=budget.period,
                            retry_after_s=retry_after)

    def _count_invocation(self, tenant_id: str, budgets: tuple[Budget, ...], now: float) -> None:
        for budget in budgets:
            if budget.name == "invocations":
                self._add_local(self._local_key(tenant_id, budget, now), 1.0)

    def _add_local(self, key: tuple[str, str, str, int], amount: float) -> None:
        with contextlib.suppress(ValueError):  # max_counters=0: nothing is kept
            self._counters[key] = self._counters.get(key, 0.0) + amount

    def _local_key(self, tenant_id: str, budget: Budget, now: float) -> tuple[str, str, str, int]:
        return (tenant_id, budget.name, budget.period, self._window(budget, now))

    @staticmethod
    def _window(budget: Budget, now: float) -> int:
        return int(now // PERIOD_SECONDS[budget.period])

    @staticmethod
    def _expiry_ms(budget: Budget, now: float) -> int:
        period = PERIOD_SECONDS[budget.period]
        return int(((now // period + 1) * period - now + _EXPIRY_GRACE_S) * 1000)


def _counter(bucket: UsageBucket, name: str) -> float:
    if name == "invocations":
        return bucket.invocations
    if name == "errors":
        return bucket.errors
    return bucket.fields.get(name, 0.0)
