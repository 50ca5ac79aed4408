"""The runner's parts, built once from ``Settings`` and shared by every request.

``Runtime.open()`` builds everything that needs no running event loop task (store, caches, engine, linker,
capability backends); ``Runtime.run()`` is the background work (the epoch ticker, the debug event publisher),
started by the app's ``while_serving`` hook in its nursery; ``aclose()`` releases what was opened.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import trio

from bundles import ObjectExists, ObjectNotFound, SignaturePolicy, TrustBundle
from bundles.store import BundleLayout, BundleStore, open_store
from cache import ArtifactCache, CompiledCache, DiskCache, SharedArtifacts, precompile_key
from contract import decode_execute_result, encode_execute_result

from ._admission import Admission
from ._bundles import BundleService
from ._config import MIB, Settings
from ._errors import ConfigError
from ._guest_threads import GuestThreads
from ._journal import JournalService
from ._metrics import RunnerMetrics
from ._shared_caps import SharedCaps
from ._warmup import WarmUp
from ._wire import ExecuteResult
from .capabilities import (
    Capability,
    CapabilityBase,
    CapabilityConfigError,
    Hooks,
    InvocationInputs,
    configure_capabilities,
    prepare_invocation,
    world_linker,
)
from .debug_events import DebugEventPublisher
from .engine import EngineConfig, Invocation, WasmEngine
from .idempotency import Codec, IdempotencyCache, open_records

if TYPE_CHECKING:
    from ._workers import WorkerRole

__all__ = ["Runtime"]

log = logging.getLogger("runner_trio")

# Average compiled-component footprint used to bound the in-memory cache by bytes (a JS guest is ~35 MB).
_COMPILED_BYTES_PER_ENTRY: Final = 48 * MIB


_RESULT_CODEC: Final[Codec[ExecuteResult]] = Codec(
    encode=lambda result: json.dumps(encode_execute_result(result)).encode(),
    decode=lambda raw: decode_execute_result(json.loads(raw)),
)


@dataclass
class Runtime:
    """Everything a request needs. Build with :meth:`open`; run :meth:`run` in a nursery while serving."""

    settings: Settings
    metrics: RunnerMetrics
    engine: WasmEngine
    linker: Any
    store: BundleStore
    disk: DiskCache
    bundles: BundleService
    admission: Admission
    idempotency: IdempotencyCache[ExecuteResult]
    capabilities: tuple[Capability, ...]
    events: DebugEventPublisher
    warmup: WarmUp
    journal: JournalService | None = None
    """The invocation journal (``RUNNER_JOURNAL_KEYS``); None: requests' journal policies are ignored."""
    guest_threads: GuestThreads | None = None
    """The worker threads guests run on (``_guest_threads``: ``RUNNER_GUEST_THREADS`` at once, up to
    ``RUNNER_MAX_CONCURRENCY`` as guests run long), apart from trio's default limiter (DNS, disk), so guests
    never take the threads those need, nor the other way round."""
    _closers: list[Any] = field(default_factory=list)
    _preparers: tuple[Capability, ...] = ()
    _journal_warned: bool = False

    @classmethod
    async def open(cls, settings: Settings, *, worker: WorkerRole | None = None) -> Runtime:
        """Build the runtime (``worker``: this process is one of a runner's workers; see ``_workers.py``).

        Raises:
            ConfigError: a setting names something unusable (trust bundle, allowlist, precompile key, …).
        """
        metrics = RunnerMetrics(worker=worker.index if worker is not None else 1,
                                usage_per_tenant=settings.usage_metrics_per_tenant)
        try:
            settings.var_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError("RUNNER_VAR_DIR", f"cannot create {settings.var_dir}: {exc}") from None
        trust = None
        if settings.trust_bundle is not None:
            try:
                trust = TrustBundle.from_file(settings.trust_bundle)
            except Exception as exc:
                raise ConfigError("SIGNING_TRUST_BUNDLE", str(exc)) from None
        try:
            # Each capability reads and checks its own settings (allowlist, storage URL, ...) once, here.
            capabilities = tuple(
                configure_capabilities(settings, Hooks(on_egress_denied=lambda _reason: metrics.egress_denied.inc()))
            )
        except CapabilityConfigError as exc:
            raise ConfigError(exc.setting, str(exc).removeprefix(f"{exc.setting}: ")) from None
        try:
            layout = BundleLayout(settings.bundle_key_template)
        except ValueError as exc:
            raise ConfigError("RUNNER_BUNDLE_KEY_TEMPLATE", str(exc)) from None
        try:
            store = open_store(settings.resolved_store_base, env=settings.store_env)
        except Exception as exc:
            raise ConfigError("BUNDLE_STORE_BASE", str(exc)) from None

        try:
            records = open_records(settings.idempotency_url, default_path=settings.resolved_idempotency_path)
        except ValueError as exc:
            raise ConfigError("RUNNER_IDEMPOTENCY_URL", str(exc)) from None

        engine = WasmEngine(EngineConfig(observe_memory=settings.observe_memory))
        disk = DiskCache(
            settings.resolved_cache_root,
            max_bytes=settings.cache_max_bytes,
            min_free_bytes=settings.cache_min_free_bytes,
        )
        await disk.open()
        shared = None
        if settings.precompile_key:
            try:
                key = precompile_key(settings.precompile_key)
            except Exception as exc:
                raise ConfigError("RUNNER_PRECOMPILE_KEY", str(exc)) from None
            shared = SharedArtifacts(store, key=key, not_found=ObjectNotFound, already_exists=ObjectExists)
        compiled: CompiledCache[tuple[str, str], Any] = CompiledCache(
            max_entries=settings.compiled_cache_entries,
            max_bytes=settings.compiled_cache_entries * _COMPILED_BYTES_PER_ENTRY,
        )
        artifacts: ArtifactCache[Any] = ArtifactCache(disk, compiled=compiled, shared=shared)
        bundles = BundleService(
            store=store,
            disk=disk,
            artifacts=artifacts,
            compiler=engine,
            policy=SignaturePolicy(trust),
            layout=layout,
            max_bundle_bytes=settings.max_bundle_bytes,
        )
        metrics.watch_cache(lambda: _cache_figures(artifacts))

        journal = JournalService.open(settings, store, metrics)
        linker = world_linker(engine, capabilities)
        events = DebugEventPublisher(
            settings.debug_redis_url,
            stream_prefix=settings.debug_stream_prefix,
            maxlen=settings.debug_maxlen,
            max_event_bytes=settings.debug_max_event_bytes,
            on_published=metrics.debug_events.inc,
            on_dropped=metrics.debug_events_dropped.inc,
        )
        runtime = cls(
            settings=settings,
            metrics=metrics,
            engine=engine,
            linker=linker,
            store=store,
            disk=disk,
            bundles=bundles,
            admission=Admission(
                max_concurrency=settings.max_concurrency,
                max_per_tenant=settings.max_concurrency_per_tenant,
                max_per_extension=settings.max_concurrency_per_extension,
                max_queue=settings.max_queue,
                queue_timeout=settings.queue_timeout_ms / 1000,
                memory_budget_mb=settings.memory_budget_mb,
                discipline=settings.admission_queue,
                weights=dict(settings.tenant_weights),
                shared=SharedCaps(
                    worker.caps_dir,
                    max_per_tenant=settings.max_concurrency_per_tenant,
                    max_per_extension=settings.max_concurrency_per_extension,
                ) if worker is not None else None,
            ),
            guest_threads=GuestThreads(
                settings.max_concurrency,
                eager=min(settings.guest_threads or settings.max_concurrency, settings.max_concurrency),
                stall_s=settings.guest_stall_ms / 1000,
            ),
            idempotency=IdempotencyCache(
                ttl=settings.idempotency_ttl_s,
                max_entries=settings.idempotency_max_entries,
                records=records,
                codec=_RESULT_CODEC,
                claim_margin=settings.idempotency_claim_margin_s,
            ),
            capabilities=capabilities,
            events=events,
            warmup=WarmUp(settings.warmup_hashes, bundles.warm, timeout_s=settings.warmup_timeout_s),
            journal=journal,
        )
        # The journal first: its last entries go to the store before that closes.
        runtime._closers = [*([journal] if journal is not None else []), *capabilities, store, disk, records]
        # Only the capabilities with per-invocation state are awaited per invocation (today: secrets).
        runtime._preparers = tuple(c for c in capabilities if _has_prepare(c))
        return runtime

    async def prepare(self, invocation: Invocation, inputs: InvocationInputs) -> Invocation:
        """``invocation`` with every capability's per-invocation state (the opened secrets, ...).

        Raises:
            SecretEnvelopeError: the secret envelope cannot be opened.
        """
        return await prepare_invocation(self._preparers, invocation, inputs)

    def journal_unconfigured(self) -> None:
        """A request asked for a journal and this runner has none: say so once (not per request)."""
        if not self._journal_warned:
            self._journal_warned = True
            log.warning("requests ask for an invocation journal but RUNNER_JOURNAL_KEYS is not set: not recording")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Background work while serving: the epoch ticker, the debug event publisher, shared bundle loads."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.engine.run_ticker)
            await nursery.start(self.events.run)
            await nursery.start(self.bundles.run)
            nursery.start_soon(self.metrics.run)
            await nursery.start(self.warmup.run)
            if self.journal is not None:
                await nursery.start(self.journal.run)
            task_status.started()

    async def aclose(self) -> None:
        # Give queued debug events (often the last words of a failing guest) a moment to reach Redis.
        with trio.move_on_after(2), trio.CancelScope(shield=True):
            await self.events.flush()
        for closer in self._closers:
            aclose = getattr(closer, "aclose", None)
            if aclose is None:
                continue
            with trio.CancelScope(shield=True):
                try:
                    await aclose()
                except Exception:
                    log.exception("closing %r failed", closer)


def _has_prepare(capability: Capability) -> bool:
    """Whether ``capability`` has per-invocation state (its ``prepare`` is not the base's no-op)."""
    base_prepare: object = CapabilityBase.prepare
    return getattr(type(capability), "prepare", None) is not base_prepare


def _cache_figures(artifacts: ArtifactCache[Any]) -> dict[str, float]:
    stats = artifacts.statistics()
    return {
        "fills": stats.fills,
        "builds": stats.builds,
        "compiled_hits": stats.memory_hits,
        "precompiled_loads": stats.precompiled_loads + stats.shared_loads,
        "evictions": stats.evictions,
        "disk_full": stats.disk_full,
        "bytes": stats.bytes,
    }
