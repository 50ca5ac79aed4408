from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bundles import (
    ArchiveError,
    IntegrityError,
    ObjectExists,
    ObjectNotFound,
    ObjectTooLarge,
    SignatureError,
    TrustBundle,
    content_hash,
    fetch_bundle,
    generate_private_key,
    pack_directory,
    publish_bundle,
    read_bundle,
    sign_bundle,
)
from bundles.store import BundleLayout, BundleStore, open_store
from tests.bundles._bundle_helpers import COMPONENT, archive, default_files, file_member, valid_members, write_tree

if TYPE_CHECKING:  # tests/bundles is not a package; conftest.py is importable by name at run time too
    from conftest import Backend, MotoS3


class MemoryStore:
    """A write-once in-memory store with the BundleStore contract, recording the order of writes."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.writes: list[str] = []

    async def put_bytes(self, key: str, data: bytes) -> None:
        if key in self.objects:
            if self.objects[key] != data:
                raise ObjectExists(f"{key} holds other bytes")
            return
        self.objects[key] = bytes(data)
        self.writes.append(key)

    async def replace_bytes(self, key: str, data: bytes) -> None:
        self.objects[key] = bytes(data)
        self.writes.append(key)

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    async def get_bytes(self, key: str, *, max_bytes: int, sha256_hex: str | None = None) -> bytes:
        if key not in self.objects:
            raise ObjectNotFound(key)
        data = self.objects[key]
        if len(data) > max_bytes:
            raise ObjectTooLarge(key)
        if sha256_hex is not None and hashlib.sha256(data).hexdigest() != sha256_hex:
            raise IntegrityError(key)
        return data

    async def exists(self, key: str) -> bool:
        return key in self.objects

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


@pytest.fixture
def bundle(tmp_path: Path) -> bytes:
    return pack_directory(write_tree(tmp_path / "src"))


def test_memory_store_matches_the_protocol() -> None:
    assert isinstance(MemoryStore(), BundleStore)


async def test_publish_writes_sidecars_then_the_bundle(bundle: bytes) -> None:
    store = MemoryStore()
    private_pem, public_pem = generate_private_key("ed25519")
    signature = sign_bundle(bundle, private_pem)
    digest = await publish_bundle(store, bundle, signature + b"\n", trust=TrustBundle.from_pem(public_pem))
    hex_ = digest.removeprefix("sha256:")
    assert digest == content_hash(bundle)
    prefix = f"sha256/{hex_}"
    assert store.writes == [
        f"{prefix}/manifest.json",
        f"{prefix}/entry.wasm",
        f"{prefix}/bundle.sig",
        f"{prefix}/bundle.tar.zst",
    ]
    assert store.objects[f"{prefix}/bundle.tar.zst"] == bundle
    assert store.objects[f"{prefix}/entry.wasm"] == COMPONENT
    assert store.objects[f"{prefix}/manifest.json"] == default_files()["manifest.json"]
    assert store.objects[f"{prefix}/bundle.sig"] == signature  # canonical: no trailing newline

    # Idempotent: the same bytes again are a no-op.
    assert await publish_bundle(store, bundle, signature) == digest
    assert len(store.writes) == 4

    fetched = await fetch_bundle(store, digest)
    assert (fetched.data, fetched.signature) == (bundle, signature)
    assert TrustBundle.from_pem(public_pem).verify(fetched.data, fetched.signature or b"")


async def test_publish_of_a_new_signature_replaces_only_the_signature(bundle: bytes) -> None:
    store = MemoryStore()
    first, _ = generate_private_key("ed25519")
    second, second_public = generate_private_key("ed25519")
    digest = await publish_bundle(store, bundle, sign_bundle(bundle, first))
    before = dict(store.objects)
    assert await publish_bundle(store, bundle, sign_bundle(bundle, second)) == digest
    fetched = await fetch_bundle(store, digest)
    assert TrustBundle.from_pem(second_public).verify(fetched.data, fetched.signature or b"")
    changed = {key for key in store.objects if store.objects[key] != before[key]}
    assert changed == {f"sha256/{digest.removeprefix('sha256:')}/bundle.sig"}


async def test_publish_refuses_other_bytes_under_a_content_addressed_key(bundle: bytes) -> None:
    store = MemoryStore()
    digest = await publish_bundle(store, bundle)
    store.objects[f"sha256/{digest.removeprefix('sha256:')}/manifest.json"] = b"{}"  # tampered with
    with pytest.raises(ObjectExists):
        await publish_bundle(store, bundle)


async def test_publish_validates_before_writing_anything(bundle: bytes) -> None:
    store = MemoryStore()
    with pytest.raises(ArchiveError, match="traversal"):
        await publish_bundle(store, archive([*valid_members(), file_member("../evil", b"x")]))
    _, public_pem = generate_private_key("ed25519")
    other_private, _ = generate_private_key("ed25519")
    with pytest.raises(SignatureError):
        await publish_bundle(
            store, bundle, sign_bundle(bundle, other_private), trust=TrustBundle.from_pem(public_pem)
        )
    with pytest.raises(SignatureError, match="not base64"):
        await publish_bundle(store, bundle, b"%%%")
    assert store.objects == {}


async def test_fetch_without_signature_and_failures(bundle: bytes) -> None:
    store = MemoryStore()
    digest = await publish_bundle(store, bundle)
    fetched = await fetch_bundle(store, digest.removeprefix("sha256:").upper())
    assert (fetched.data, fetched.signature) == (bundle, None)
    with pytest.raises(ObjectTooLarge):
        await fetch_bundle(store, digest, max_bytes=10)
    with pytest.raises(ObjectNotFound):
        await fetch_bundle(store, "0" * 64)
    # A flipped byte in the stored object is caught by the hash check.
    key = f"sha256/{digest.removeprefix('sha256:')}/bundle.tar.zst"
    tampered = bytearray(store.objects[key])
    tampered[-10] ^= 1
    store.objects[key] = bytes(tampered)
    with pytest.raises(IntegrityError):
        await fetch_bundle(store, digest)


async def test_tenant_scoped_layout(bundle: bytes) -> None:
    store = MemoryStore()
    layout = BundleLayout("tenants/{tenant}/extensions/{extension}/sha256/{hex}")
    ctx = {"tenant": "acme", "extension": "hello"}
    digest = await publish_bundle(store, bundle, layout=layout, key_context=ctx)
    hex_ = digest.removeprefix("sha256:")
    assert f"tenants/acme/extensions/hello/sha256/{hex_}/bundle.tar.zst" in store.objects
    assert (await fetch_bundle(store, digest, layout=layout, key_context=ctx)).data == bundle


async def test_round_trip_through_a_file_store(tmp_path: Path, bundle: bytes) -> None:
    root = tmp_path / "store"
    root.mkdir()
    store = open_store(f"file://{root}")
    private_pem, public_pem = generate_private_key("ecdsa-p256")
    signature = sign_bundle(bundle, private_pem)
    try:
        digest = await publish_bundle(store, bundle, signature)
        assert await publish_bundle(store, bundle, signature) == digest  # write-once, same bytes
        fetched = await fetch_bundle(store, digest)
    finally:
        await store.aclose()
    assert fetched.data == bundle
    assert TrustBundle.from_pem(public_pem).verify(fetched.data, fetched.signature or b"")
    hex_ = digest.removeprefix("sha256:")
    stored = root / "sha256" / hex_
    assert sorted(p.name for p in stored.iterdir()) == ["bundle.sig", "bundle.tar.zst", "entry.wasm", "manifest.json"]
    assert json.loads((stored / "manifest.json").read_bytes())["name"] == "com.example.hello"
    assert (stored / "entry.wasm").read_bytes() == read_bundle(bundle).entry


async def test_round_trip_through_each_backend(store: BundleStore, backend: Backend, bundle: bytes) -> None:
    # ``store``/``backend`` come from tests/bundles/conftest.py: a FileStore and an S3Store on moto.
    private_pem, public_pem = generate_private_key("ed25519")
    signature = sign_bundle(bundle, private_pem)
    digest = await publish_bundle(store, bundle, signature)
    assert await publish_bundle(store, bundle, signature) == digest
    fetched = await fetch_bundle(store, digest)
    assert fetched.data == bundle
    assert TrustBundle.from_pem(public_pem).verify(fetched.data, fetched.signature or b"")
    hex_ = digest.removeprefix("sha256:")
    written = [w for w in backend.everything_written() if f"sha256/{hex_}/" in w]
    assert sorted(w.rsplit("/", 1)[1] for w in written) == [
        "bundle.sig", "bundle.tar.zst", "entry.wasm", "manifest.json"
    ]


async def test_a_new_signature_replaces_the_old_on_each_backend(
    store: BundleStore, backend: Backend, bundle: bytes
) -> None:
    first, _ = generate_private_key("ed25519")
    second, second_public = generate_private_key("ed25519")
    digest = await publish_bundle(store, bundle, sign_bundle(bundle, first))
    assert await publish_bundle(store, bundle, sign_bundle(bundle, second)) == digest
    fetched = await fetch_bundle(store, digest)
    assert fetched.data == bundle
    assert TrustBundle.from_pem(second_public).verify(fetched.data, fetched.signature or b"")
    # The bundle bytes stay write-once.
    with pytest.raises(ObjectExists):
        await store.put_bytes(f"sha256/{digest.removeprefix('sha256:')}/bundle.tar.zst", bundle + b"x")


async def test_round_trip_through_an_s3_url(moto_s3: MotoS3, s3_bucket: str, bundle: bytes) -> None:
    store = open_store(f"s3://{s3_bucket}/bundles", env=moto_s3.env())
    try:
        digest = await publish_bundle(store, bundle)
        fetched = await fetch_bundle(store, digest)
    finally:
        await store.aclose()
    assert (fetched.data, fetched.signature) == (bundle, None)
    hex_ = digest.removeprefix("sha256:")
    assert f"bundles/sha256/{hex_}/bundle.tar.zst" in moto_s3.keys(s3_bucket)
