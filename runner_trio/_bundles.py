"""Bundles as the runner uses them: fetched once, verified, cached on disk, compiled once per engine.

``BundleService`` is the only place that turns a content hash into something runnable or servable:

- on a cache miss it fetches ``bundle.tar.zst`` (and ``bundle.sig``) from the store, with the sha256 checked
  while streaming, applies the signature policy, validates the whole archive, and fills the cache entry with
  ``entry.wasm``, ``manifest.json``, the ``ui/`` subtree and ``signature.json`` (what verified it);
- the component comes from the artifact cache (memory, then this runner's own precompiled file, then the
  HMAC-checked shared store, then a compile), one compile per (hash, engine target) however many ask at once;
- an entry admitted without a signature (no trust bundle then) is refetched and checked again once a trust
  bundle is configured, so turning verification on cannot be bypassed by a warm cache;
- a full cache disk is the cache's to handle (evict unused entries, write once more); when it still cannot
  write, the bundle is unavailable with a message that starts ``cache disk full:``.
- ``load`` runs fetch, verify and compile in the service's own task (``run``), shared by every request for the
  bundle meanwhile: a request waits for it only as long as its own deadline allows, and leaving early cancels
  nothing another request waits for (a compile in a worker thread could not be interrupted anyway).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, final

import trio

from bundles import (
    ArchiveLimits,
    BundleContents,
    BundleError,
    Manifest,
    SignaturePolicy,
    SignatureStatus,
    extract_bundle,
    fetch_bundle,
    parse_manifest,
    read_bundle,
)
from bundles.store import BundleLayout, BundleStore
from cache import ArtifactCache, CacheEntry, CacheError, CacheFull, DiskCache, Fill

from ._errors import BundleUnavailable

__all__ = ["BundleService", "Compiler", "Warm"]

log = logging.getLogger(__name__)

ENTRY_FILE: Final = "entry.wasm"
MANIFEST_FILE: Final = "manifest.json"
SIGNATURE_FILE: Final = "signature.json"
UI_DIR: Final = "ui"


class Compiler(Protocol):
    """What the bundle service needs of the engine."""

    @property
    def target(self) -> str: ...

    def compile(self, data: bytes) -> Any: ...

    def serialize(self, component: Any) -> bytes: ...

    def deserialize_file(self, path: Path) -> Any: ...


@dataclass(frozen=True, slots=True)
class _Checked:
    """A fetched bundle that passed the signature policy and archive validation, ready to be written."""

    data: bytes
    status: SignatureStatus
    contents: BundleContents


@dataclass(frozen=True, slots=True)
class Warm:
    """What :meth:`BundleService.pin_warm` hands out: the pinned entry, the compiled component, the manifest."""

    entry: CacheEntry
    component: Any
    manifest: Manifest


@dataclass
class _Load:
    """One shared load: its waiters wake on ``done`` and find the component or the error."""

    done: trio.Event = field(default_factory=trio.Event)
    component: Any = None
    error: BaseException | None = None


@final
class BundleService:
    """Turns content hashes into verified cache entries and compiled components."""

    def __init__(
        self,
        *,
        store: BundleStore,
        disk: DiskCache,
        artifacts: ArtifactCache[Any],
        compiler: Compiler,
        policy: SignaturePolicy,
        layout: BundleLayout | None = None,
        max_bundle_bytes: int,
        archive_limits: ArchiveLimits | None = None,
    ) -> None:
        self.store = store
        self.disk = disk
        self.artifacts = artifacts
        self._compiler = compiler
        self._policy = policy
        self._layout = layout or BundleLayout()
        self._max_bundle_bytes = max_bundle_bytes
        self._limits = archive_limits or ArchiveLimits()
        self._manifests: dict[str, Manifest] = {}
        # Hashes whose cache entry this process found signed by a trusted key under the current policy (the
        # entry is content-addressed: it cannot change while cached; a discard forgets it).
        self._trusted: set[str] = set()
        self._loads: dict[str, _Load] = {}
        self._nursery: trio.Nursery | None = None

    @asynccontextmanager
    async def entry(
        self, hex_digest: str, *, key_context: Mapping[str, str] | None = None
    ) -> AsyncIterator[CacheEntry]:
        """Pin the verified cache entry of a bundle, fetching it on a miss.

        Raises:
            BundleUnavailable: the bundle cannot be fetched, verified or read.
        """
        fill = self._filler(hex_digest, dict(key_context or {}))
        for _attempt in range(2):
            stack = AsyncExitStack()
            try:
                entry = await stack.enter_async_context(self.disk.entry(hex_digest, fill))
                trusted = await self._still_trusted(entry)
            except BaseException as exc:
                await stack.aclose()
                if isinstance(exc, CacheFull):
                    # The bundle is fine and the cache did what it could: say so, not "cache_error" (which the
                    # ext-ui route reads as a broken bundle). The message starts "cache disk full:".
                    raise BundleUnavailable(exc.message) from None
                if isinstance(exc, BundleError):
                    raise BundleUnavailable(f"{exc.code}: {exc.message}") from exc
                if isinstance(exc, CacheError):
                    raise BundleUnavailable(f"cache_error: {exc}") from exc
                raise
            if trusted:
                self._trusted.add(hex_digest)
                async with stack:
                    yield entry
                return
            await stack.aclose()
            # Admitted under an older policy (no trust bundle then): fetch again under the current one.
            log.warning("bundle sha256:%s was cached under another signature policy: refetching", hex_digest)
            self._trusted.discard(hex_digest)
            await self.disk.discard(hex_digest)
            self.artifacts.forget(hex_digest)
        raise BundleUnavailable("signature_invalid: cached entry no longer trusted")

    def pin_warm(self, hex_digest: str) -> Warm | None:
        """An invocation's warm path, without awaiting anything: the bundle's cache entry pinned (give it back with
        :meth:`unpin`), its compiled component in memory and its manifest parsed, all already checked by an
        earlier :meth:`entry`. None when any of them is not at hand: then :meth:`load` and :meth:`entry` do the
        work (and the waiting)."""
        manifest = self._manifests.get(hex_digest)
        if manifest is None or (self._policy.trust is not None and hex_digest not in self._trusted):
            return None
        key = (hex_digest, self._compiler.target)
        compiled = self.artifacts.compiled
        if key not in compiled:
            return None
        entry = self.disk.pin_held(hex_digest)
        if entry is None:
            return None
        component = compiled.hit(key)  # in memory a moment ago, and nothing ran since
        assert component is not None
        return Warm(entry, component, manifest)

    async def unpin(self, entry: CacheEntry) -> None:
        """Give back the pin of :meth:`pin_warm`."""
        await self.disk.unpin(entry)

    @property
    def layout_fields(self) -> frozenset[str]:
        """Fields besides ``hex`` the store's key template needs (e.g. ``tenant``, ``extension``)."""
        return frozenset(self._layout.template_fields - {"hex"})

    async def component(self, entry: CacheEntry) -> Any:
        """The compiled component of a pinned entry (built at most once per engine target)."""

        async def build() -> Any:
            data = await entry.open_verified(ENTRY_FILE)
            return await trio.to_thread.run_sync(self._compiler.compile, data)

        return await self.artifacts.load_or_build(
            entry.hex,
            self._compiler.target,
            build=build,
            serialize=self._compiler.serialize,
            deserialize_file=self._compiler.deserialize_file,
            entry=entry,
        )

    async def manifest(self, entry: CacheEntry) -> Manifest:
        cached = self._manifests.get(entry.hex)
        if cached is None:
            cached = parse_manifest(await entry.open_verified(MANIFEST_FILE))
            if len(self._manifests) > 1024:
                self._manifests.clear()
            self._manifests[entry.hex] = cached
        return cached

    async def warm(self, hex_digest: str, *, key_context: Mapping[str, str] | None = None) -> None:
        """Fetch, verify and compile a bundle ahead of its first request."""
        async with self.entry(hex_digest, key_context=key_context) as entry:
            await self.component(entry)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the shared loads of :meth:`load` while serving (until cancelled)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._nursery = None

    async def load(self, hex_digest: str, *, key_context: Mapping[str, str] | None = None) -> Any | None:
        """Wait until a bundle is fetched, verified and compiled; return its component (None: nothing to wait for).

        The work runs once in the task :meth:`run` hosts, however many callers ask meanwhile; bound the wait with
        a cancel scope. A component in memory is returned at once (counted as a memory hit, as :meth:`component`
        would). None means :meth:`run` is not running: the caller's own :meth:`entry` and :meth:`component` do
        the work as before.

        Raises:
            BundleUnavailable: the bundle cannot be fetched, verified or read.
            Exception: whatever compiling the component raised.
        """
        if self._nursery is None:
            return None
        in_memory = self.artifacts.compiled.hit((hex_digest, self._compiler.target))
        if in_memory is not None:
            return in_memory
        load = self._loads.get(hex_digest)
        if load is None:
            load = self._loads[hex_digest] = _Load()
            self._nursery.start_soon(self._load, hex_digest, dict(key_context or {}), load)
        await load.done.wait()
        if load.error is not None:
            raise load.error
        return load.component

    async def _load(self, hex_digest: str, key_context: dict[str, str], load: _Load) -> None:
        try:
            async with self.entry(hex_digest, key_context=key_context) as entry:
                load.component = await self.component(entry)
        except Exception as exc:
            load.error = exc
        except BaseException:
            load.error = BundleUnavailable("interrupted: the runner is shutting down")
            raise
        finally:
            del self._loads[hex_digest]
            load.done.set()

    def _filler(self, hex_digest: str, key_context: dict[str, str]) -> Fill:
        """The cache fill of one bundle: fetched and checked once, written as often as the cache asks.

        The cache runs a fill a second time after a full disk made it evict; that second write reuses the
        bytes already fetched and checked instead of fetching again. They are let go once written.
        """
        checked: list[_Checked] = []

        async def fill(tmp: Path) -> None:
            if not checked:
                checked.append(await self._fetch_checked(hex_digest, key_context))
            await trio.to_thread.run_sync(self._write, checked[0], tmp)
            checked.clear()

        return fill

    async def _fetch_checked(self, hex_digest: str, key_context: dict[str, str]) -> _Checked:
        fetched = await fetch_bundle(
            self.store,
            hex_digest,
            max_bytes=self._max_bundle_bytes,
            layout=self._layout,
            key_context=key_context,
        )
        status = await trio.to_thread.run_sync(
            self._policy.check, fetched.data, fetched.signature, f"sha256:{hex_digest}"
        )
        contents = await trio.to_thread.run_sync(functools.partial(read_bundle, fetched.data, limits=self._limits))
        return _Checked(fetched.data, status, contents)

    def _write(self, checked: _Checked, tmp: Path) -> None:
        contents = checked.contents
        (tmp / ENTRY_FILE).write_bytes(contents.entry)
        (tmp / MANIFEST_FILE).write_bytes(contents.manifest_bytes)
        (tmp / SIGNATURE_FILE).write_text(
            json.dumps({"state": checked.status.state, "key": checked.status.key_fingerprint}, sort_keys=True)
        )
        if any(name.startswith(UI_DIR + "/") for name in contents.members):
            extract_bundle(checked.data, tmp, prefix=UI_DIR + "/", limits=self._limits)

    async def _still_trusted(self, entry: CacheEntry) -> bool:
        trust = self._policy.trust
        if trust is None:
            return True
        try:
            recorded = json.loads(await entry.open_verified(SIGNATURE_FILE))
        except (CacheError, ValueError):
            return False
        return bool(recorded.get("state") == "verified" and recorded.get("key") in trust.fingerprints)
