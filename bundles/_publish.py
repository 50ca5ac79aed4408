"""Publishing a bundle to the store, and fetching one back by content hash."""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import trio

from ._archive import DEFAULT_LIMITS, DEFAULT_MAX_COMPRESSED_BYTES, ArchiveLimits
from ._errors import ObjectExists, ObjectNotFound
from ._pack import parse_content_hash
from ._read import read_bundle
from ._signature import TrustBundle, decode_signature
from .store import BundleLayout, BundleStore

__all__ = ["DEFAULT_MAX_SIGNATURE_BYTES", "FetchedBundle", "fetch_bundle", "publish_bundle"]

DEFAULT_MAX_SIGNATURE_BYTES: Final = 16 * 1024
_DEFAULT_LAYOUT: Final = BundleLayout()


@dataclass(frozen=True, eq=False)
class FetchedBundle:
    """A bundle read back from the store: its bytes (hash already verified) and its signature, if any."""

    data: bytes
    signature: bytes | None


async def publish_bundle(
    store: BundleStore,
    data: bytes,
    signature: bytes | str | None = None,
    *,
    layout: BundleLayout = _DEFAULT_LAYOUT,
    key_context: Mapping[str, str] | None = None,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    trust: TrustBundle | None = None,
) -> str:
    """Validate ``data`` as a bundle and write it, write-once, under its content hash.

    Writes ``manifest.json`` and ``entry.wasm`` (copies from inside the archive), ``bundle.sig`` when a
    signature is given, and ``bundle.tar.zst`` last, so a reader that finds the bundle also finds its
    signature. Publishing the same bytes again is a no-op. The bundle and its copies are write-once; the
    signature is not part of the bundle's identity, so publishing the same bytes with another signature
    replaces ``bundle.sig`` (re-signing with the right key is the way out of a wrong one).

    Args:
        store: the bundle store.
        data: the compressed bundle.
        signature: the detached signature text (base64); stored in canonical base64.
        layout: names the objects; ``key_context`` fills its extra fields (e.g. tenant, extension).
        limits: archive limits for the validation.
        trust: if given, the signature must verify against it before anything is written.

    Returns:
        The content hash, ``sha256:<hex>``.

    Raises:
        ArchiveError / ManifestError / EntryError: ``data`` is not a valid bundle.
        SignatureError: malformed signature, or not trusted by ``trust``.
        ObjectExists: other bytes are already published under a content-addressed key (a store shared with
            another layout, or tampered with).
        StoreError: the store failed.
    """
    contents = await trio.to_thread.run_sync(functools.partial(read_bundle, data, limits=limits))
    hex_hash = contents.content_hash.removeprefix("sha256:")
    ctx = dict(key_context or {})
    sig_bytes: bytes | None = None
    if signature is not None:
        sig_bytes = base64.b64encode(decode_signature(signature))
        if trust is not None:
            await trio.to_thread.run_sync(trust.verify, data, sig_bytes)
    await store.put_bytes(layout.manifest_key(hex_hash, **ctx), contents.manifest_bytes)
    await store.put_bytes(layout.entry_key(hex_hash, **ctx), contents.entry)
    if sig_bytes is not None:
        sig_key = layout.signature_key(hex_hash, **ctx)
        try:
            await store.put_bytes(sig_key, sig_bytes)
        except ObjectExists:
            await store.replace_bytes(sig_key, sig_bytes)
    await store.put_bytes(layout.bundle_key(hex_hash, **ctx), data)
    return contents.content_hash


async def fetch_bundle(
    store: BundleStore,
    content_hash: str,
    *,
    max_bytes: int = DEFAULT_MAX_COMPRESSED_BYTES,
    layout: BundleLayout = _DEFAULT_LAYOUT,
    key_context: Mapping[str, str] | None = None,
    max_signature_bytes: int = DEFAULT_MAX_SIGNATURE_BYTES,
) -> FetchedBundle:
    """Read a bundle and its signature (None when there is none) back from the store.

    The bundle's sha256 is verified while it streams; the archive itself is not parsed here.

    Raises:
        ContentHashError: ``content_hash`` is malformed.
        ObjectNotFound: no bundle under that hash.
        ObjectTooLarge: the bundle exceeds ``max_bytes`` (or the signature ``max_signature_bytes``).
        IntegrityError: the stored bytes do not hash to ``content_hash``.
        StoreError: the store failed.
    """
    hex_hash = parse_content_hash(content_hash)
    ctx = dict(key_context or {})
    data = await store.get_bytes(layout.bundle_key(hex_hash, **ctx), max_bytes=max_bytes, sha256_hex=hex_hash)
    try:
        signature: bytes | None = await store.get_bytes(
            layout.signature_key(hex_hash, **ctx), max_bytes=max_signature_bytes
        )
    except ObjectNotFound:
        signature = None
    return FetchedBundle(data=data, signature=signature)
