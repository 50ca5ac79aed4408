"""The BundleStore contract, run against both backends (a temp directory and moto's S3 server)."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

import pytest
import trio

from bundles._errors import IntegrityError, ObjectExists, ObjectNotFound, ObjectTooLarge, StoreError
from bundles.store import BundleStore, FileStore, S3Store

if TYPE_CHECKING:
    from conftest import Backend

KEY = "sha256/" + "ab" * 32 + "/bundle.tar.zst"


async def test_satisfies_protocol(store: BundleStore) -> None:
    assert isinstance(store, BundleStore)


async def test_round_trip(store: BundleStore, backend: Backend) -> None:
    data = os.urandom(3000)
    assert not await store.exists(KEY)
    await store.put_bytes(KEY, data)
    assert await store.exists(KEY)
    assert await store.get_bytes(KEY, max_bytes=len(data)) == data
    assert await store.get_bytes(KEY, max_bytes=10 * len(data), sha256_hex=hashlib.sha256(data).hexdigest()) == data
    expected = "store/" + KEY if backend.kind == "file" else "bundles/" + KEY
    assert backend.everything_written() == [expected]


async def test_replace_bytes_writes_whether_or_not_the_key_exists(store: BundleStore, backend: Backend) -> None:
    sig = "sha256/" + "ab" * 32 + "/bundle.sig"
    await store.replace_bytes(sig, b"first")
    assert await store.get_bytes(sig, max_bytes=100) == b"first"
    await store.replace_bytes(sig, b"the second, longer")
    assert await store.get_bytes(sig, max_bytes=100) == b"the second, longer"
    if backend.kind == "file":  # no temporary file is left beside it
        assert backend.everything_written() == ["store/" + sig]


async def test_empty_object_round_trip(store: BundleStore) -> None:
    await store.put_bytes("empty", b"")
    assert await store.exists("empty")
    assert await store.get_bytes("empty", max_bytes=0, sha256_hex=hashlib.sha256(b"").hexdigest()) == b""


async def test_same_bytes_twice_is_a_no_op(store: BundleStore) -> None:
    await store.put_bytes(KEY, b"bundle bytes")
    await store.put_bytes(KEY, b"bundle bytes")
    assert await store.get_bytes(KEY, max_bytes=100) == b"bundle bytes"
    assert isinstance(store, FileStore | S3Store)
    stats = store.statistics()
    assert stats.objects_written == 1
    assert stats.bytes_written == len(b"bundle bytes")


@pytest.mark.parametrize("other", [b"bundle bytez", b"bundle bytes and more", b"bundle", b""])
async def test_different_bytes_raise_object_exists(store: BundleStore, other: bytes) -> None:
    await store.put_bytes(KEY, b"bundle bytes")
    with pytest.raises(ObjectExists, match="different"):
        await store.put_bytes(KEY, other)
    assert await store.get_bytes(KEY, max_bytes=100) == b"bundle bytes"


async def test_concurrent_writers_of_different_bytes_have_exactly_one_winner(
    store: BundleStore, backend: Backend
) -> None:
    outcomes: dict[int, str] = {}

    async def writer(i: int) -> None:
        try:
            await store.put_bytes(KEY, f"writer {i} ".encode() * 1000)
        except ObjectExists:
            outcomes[i] = "exists"
        else:
            outcomes[i] = "won"

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for i in range(10):
                nursery.start_soon(writer, i)

    winners = [i for i, outcome in outcomes.items() if outcome == "won"]
    assert len(outcomes) == 10
    assert len(winners) == 1
    stored = await store.get_bytes(KEY, max_bytes=1 << 20)
    assert stored == f"writer {winners[0]} ".encode() * 1000
    assert len(backend.everything_written()) == 1  # no temporary files or stray objects left behind


async def test_concurrent_writers_of_the_same_bytes_all_succeed(store: BundleStore) -> None:
    data = os.urandom(200_000)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(store.put_bytes, KEY, data)
    assert await store.get_bytes(KEY, max_bytes=len(data)) == data
    assert isinstance(store, FileStore | S3Store)
    assert store.statistics().objects_written == 1


async def test_size_cap_stops_before_reading_the_object(store: BundleStore) -> None:
    data = os.urandom(3 * 1024 * 1024)
    await store.put_bytes(KEY, data)
    assert isinstance(store, FileStore | S3Store)
    before = store.statistics().bytes_read
    with pytest.raises(ObjectTooLarge, match="larger than the limit of 1024 bytes"):
        await store.get_bytes(KEY, max_bytes=1024)
    # The announced size (stat / Content-Length) is checked before any body byte is read.
    assert store.statistics().bytes_read == before
    assert len(await store.get_bytes(KEY, max_bytes=len(data))) == len(data)
    with pytest.raises(ObjectTooLarge):
        await store.get_bytes(KEY, max_bytes=len(data) - 1)


async def test_sha256_mismatch_raises_integrity_error(store: BundleStore) -> None:
    await store.put_bytes(KEY, b"the real bytes")
    wrong = hashlib.sha256(b"other bytes").hexdigest()
    with pytest.raises(IntegrityError, match=wrong):
        await store.get_bytes(KEY, max_bytes=100, sha256_hex=wrong)


async def test_missing_object(store: BundleStore) -> None:
    with pytest.raises(ObjectNotFound):
        await store.get_bytes("sha256/nothing/here", max_bytes=100)
    assert not await store.exists("sha256/nothing/here")


HOSTILE_KEYS = [
    "../x",
    "a/../../x",
    "/abs",
    "/etc/passwd",
    "a//b",
    "a/",
    "a\\b",
    "..\\x",
    "a/./b",
    ".hidden",
    "a/.tmp-123",
    "",
    "a b",
    "a\x00b",
    "caf\u00e9",
    "a?b",
    "a%2F..%2Fb",
    "x" * 1025,
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
async def test_hostile_keys_are_rejected_and_nothing_is_written(store: BundleStore, backend: Backend, key: str) -> None:
    with pytest.raises(ValueError, match="object key"):
        await store.put_bytes(key, b"payload")
    with pytest.raises(ValueError, match="object key"):
        await store.get_bytes(key, max_bytes=100)
    with pytest.raises(ValueError, match="object key"):
        await store.exists(key)
    with pytest.raises(ValueError, match="object key"):
        await store.delete(key)
    assert backend.everything_written() == []


async def test_delete_removes_the_object_and_a_missing_one_is_not_an_error(
    store: BundleStore, backend: Backend
) -> None:
    key = "journal/v1/acme/billing/" + "ab" * 16 + ".jrnl"
    await store.put_bytes(key, b"sealed entry")
    await store.put_bytes(KEY, b"a bundle")
    await store.delete(key)
    assert not await store.exists(key)
    with pytest.raises(ObjectNotFound):
        await store.get_bytes(key, max_bytes=100)
    await store.delete(key)  # already gone
    await store.delete("journal/v1/never/written.jrnl")  # never there, parents missing too
    # The write-once slot is free again, and nothing else was touched.
    await store.put_bytes(key, b"other bytes")
    assert await store.get_bytes(key, max_bytes=100) == b"other bytes"
    assert await store.get_bytes(KEY, max_bytes=100) == b"a bundle"
    expected = sorted(("store/" if backend.kind == "file" else "bundles/") + k for k in (key, KEY))
    assert sorted(backend.everything_written()) == expected


async def test_ping(store: BundleStore) -> None:
    await store.ping()


async def test_bad_get_arguments_are_rejected(store: BundleStore) -> None:
    await store.put_bytes(KEY, b"x")
    with pytest.raises(ValueError, match="max_bytes"):
        await store.get_bytes(KEY, max_bytes=-1)
    with pytest.raises(ValueError, match="sha256_hex"):
        await store.get_bytes(KEY, max_bytes=1, sha256_hex="ABC")


async def test_closed_store_refuses_calls(backend: Backend) -> None:
    store = backend.open()
    await store.aclose()
    with pytest.raises(StoreError, match="closed"):
        await store.get_bytes(KEY, max_bytes=1)
    with pytest.raises(StoreError, match="closed"):
        await store.delete(KEY)
