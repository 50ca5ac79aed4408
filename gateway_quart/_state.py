"""What the gateway's routes share, kept on the app (never in ``g``), and the manifest helpers."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, cast, final

import trio
from cachetools import LRUCache
from quart import current_app

import bundles
from bundles.store import BundleLayout, BundleStore
from journal import JournalReader

from ._audit import AuditWriter
from ._auth import SessionSigner
from ._budgets import BudgetGuard
from ._errors import ApiError, InvalidRequest, NotFound
from ._fleet import FleetState
from ._journal_index import JournalIndexer
from ._metrics import GatewayMetrics
from ._ratelimit import RateLimiter
from ._runner_client import RunnerClient
from ._settings import Settings
from ._usage import UsageRecorder
from .registry import SIGNATURE_PRESENT, SIGNATURE_UNSIGNED, SIGNATURE_VERIFIED, Registry, Version

if TYPE_CHECKING:
    from ._canary import CanaryController

STATE_KEY: Final = "alga_gateway"
DEFAULT_MANIFEST_CACHE_ENTRIES: Final = 1024


@final
class ManifestCache:
    """Parsed manifests by version id: a version's manifest never changes, so entries never go stale."""

    def __init__(self, *, max_entries: int = DEFAULT_MANIFEST_CACHE_ENTRIES) -> None:
        self._entries: LRUCache[str, bundles.Manifest] = LRUCache(maxsize=max_entries)

    def get(self, version: Version) -> bundles.Manifest:
        """The parsed manifest of ``version``.

        Raises:
            ApiError: 500 ``invalid_manifest`` when the stored manifest no longer parses (written under
                another schema).
        """
        manifest = self._entries.get(version.id)
        if manifest is not None:
            return manifest
        try:
            manifest = bundles.parse_manifest(version.manifest_json)
        except bundles.ManifestError as exc:
            raise ApiError("invalid_manifest", f"registered manifest is invalid: {exc.message}",
                           status=500) from exc
        with contextlib.suppress(ValueError):  # max_entries=0: nothing is kept
            self._entries[version.id] = manifest
        return manifest


@dataclass(frozen=True)
class PublishedBundle:
    hex: str
    manifest: bundles.Manifest
    manifest_json: str
    signature_status: str


async def read_published(
    store: BundleStore | None, content_hash: str, *, trust: bundles.TrustBundle | None = None
) -> PublishedBundle:
    """Read and validate the manifest of a published bundle from the store (and its signature, given ``trust``).

    Raises:
        InvalidRequest: malformed hash, or the manifest breaks the schema (``fields`` names the manifest path).
        NotFound: ``bundle_not_found``.
        ApiError: 422 ``signature_invalid`` (see :func:`check_signature`); 503 ``bundle_store_unavailable``
            (no store configured, or it failed).
    """
    if store is None:
        raise ApiError("bundle_store_unavailable", "BUNDLE_STORE_BASE is not set", status=503)
    try:
        hex_hash = bundles.parse_content_hash(content_hash)
    except ValueError:
        raise InvalidRequest({"content_hash": "must be sha256: followed by 64 hex digits"}) from None
    layout = BundleLayout()
    try:
        if not await store.exists(layout.bundle_key(hex_hash)):
            raise NotFound("bundle_not_found", f"no bundle published under sha256:{hex_hash}")
        raw = await store.get_bytes(layout.manifest_key(hex_hash), max_bytes=bundles.DEFAULT_MAX_MANIFEST_BYTES)
        signed = await store.exists(layout.signature_key(hex_hash))
    except bundles.ObjectNotFound:
        raise NotFound("bundle_not_found", f"no manifest published under sha256:{hex_hash}") from None
    except bundles.ObjectTooLarge:
        raise InvalidRequest({"manifest": "is too large"}, code="invalid_manifest") from None
    except bundles.StoreError as exc:
        raise ApiError("bundle_store_unavailable", f"bundle store failed: {exc.message}", status=503) from exc
    try:
        manifest = bundles.parse_manifest(raw)
    except bundles.ManifestError as exc:
        raise InvalidRequest({f"manifest.{exc.path}" if exc.path else "manifest": exc.message},
                             code="invalid_manifest") from None
    if trust is not None:
        return PublishedBundle(hex_hash, manifest, manifest.to_json(), await check_signature(store, hex_hash, trust))
    return PublishedBundle(hex_hash, manifest, manifest.to_json(),
                           SIGNATURE_PRESENT if signed else SIGNATURE_UNSIGNED)


async def check_signature(store: BundleStore | None, hex_hash: str, trust: bundles.TrustBundle | None) -> str:
    """Verify the published bundle's signature as the runners will, so that a bundle they would refuse is refused
    when it is registered or installed rather than when it is first invoked. Returns the signature status.

    Without a trust bundle nothing is verified (the runners run anything then): the status says whether a
    signature is there.

    Raises:
        ApiError: 422 ``signature_invalid`` naming the trusted key ids (also in ``trusted_keys``): no signature,
            or none of the trusted keys made it; 404 ``bundle_not_found``; 503 ``bundle_store_unavailable``.
    """
    if store is None:
        raise ApiError("bundle_store_unavailable", "BUNDLE_STORE_BASE is not set", status=503)
    if trust is None:
        try:
            signed = await store.exists(BundleLayout().signature_key(hex_hash))
        except bundles.StoreError as exc:
            raise ApiError("bundle_store_unavailable", f"bundle store failed: {exc.message}", status=503) from exc
        return SIGNATURE_PRESENT if signed else SIGNATURE_UNSIGNED
    try:
        fetched = await bundles.fetch_bundle(store, hex_hash)
    except bundles.ObjectNotFound:
        raise NotFound("bundle_not_found", f"no bundle published under sha256:{hex_hash}") from None
    except (bundles.ObjectTooLarge, bundles.IntegrityError, bundles.StoreError) as exc:
        raise ApiError("bundle_store_unavailable", f"bundle store failed: {exc.message}", status=503) from exc
    keys = list(trust.fingerprints)
    trusted = f"trusted keys: {', '.join(keys)}"
    if fetched.signature is None or not fetched.signature.strip():
        raise ApiError("signature_invalid", f"bundle sha256:{hex_hash} has no signature; sign it with a key the "
                       f"runners trust and publish it again ({trusted})", status=422,
                       extra={"content_hash": f"sha256:{hex_hash}", "trusted_keys": keys})
    try:
        await trio.to_thread.run_sync(trust.verify, fetched.data, fetched.signature)
    except bundles.SignatureError as exc:
        raise ApiError("signature_invalid", f"bundle sha256:{hex_hash}: {exc.message}; re-sign it with a key the "
                       f"runners trust and publish it again ({trusted})", status=422,
                       extra={"content_hash": f"sha256:{hex_hash}", "trusted_keys": keys}) from None
    return SIGNATURE_VERIFIED


@dataclass
class GatewayState:
    settings: Settings
    registry: Registry
    runner: RunnerClient
    signer: SessionSigner
    limiter: RateLimiter
    manifests: ManifestCache
    store: BundleStore | None
    audit: AuditWriter
    fleet: FleetState | None = None
    journal_index: JournalIndexer | None = None
    journal_reader: JournalReader | None = None
    """Reads sealed journal entries (``GATEWAY_JOURNAL_KEYS`` and a journal store set); ``None`` otherwise."""
    usage: UsageRecorder | None = None
    budgets: BudgetGuard | None = None
    canaries: CanaryController | None = None
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)


def state() -> GatewayState:
    """The running app's shared state."""
    return cast(GatewayState, current_app.extensions[STATE_KEY])
