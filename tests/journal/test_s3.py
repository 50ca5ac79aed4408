"""The journal on an S3 API (moto's server, IAM auth on): written, read back, deleted, and kept inside its
prefix."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import trio

from bundles.store import S3Settings, S3Store
from journal import JournalKeyring, JournalNotFound, JournalReader, JournalWriter, WriterStatistics, new_entry_id
from tests._moto import DEFAULT_REGION, MotoCredentials, create_bucket, enable_iam_auth, list_keys, moto_server


@dataclass(frozen=True)
class _Moto:
    url: str
    admin: MotoCredentials

    def settings(self) -> S3Settings:
        return S3Settings(
            access_key=self.admin.access_key,
            secret_key=self.admin.secret_key,
            endpoint_url=self.url,
            region=DEFAULT_REGION,
            force_path_style=True,
        )


@pytest.fixture(scope="module")
def moto() -> Iterator[_Moto]:
    with moto_server() as url:
        yield _Moto(url, enable_iam_auth(url))


async def test_entries_round_trip_through_s3(moto: _Moto) -> None:
    bucket = f"journal-{os.getpid()}"
    create_bucket(moto.url, bucket, credentials=moto.admin, region=DEFAULT_REGION)
    ring = JournalKeyring.parse(JournalKeyring.generate("k1"))
    ids = [new_entry_id() for _ in range(3)]
    async with S3Store(moto.settings(), bucket=bucket, prefix="store", max_attempts=1) as store:
        async with trio.open_nursery() as nursery:
            writer = JournalWriter(store, ring)
            await nursery.start(writer.run)
            for entry_id in ids:
                assert writer.submit("acme:eu", "billing", entry_id, {"entry_id": entry_id, "calls": []})
            await writer.aclose()
        assert writer.statistics() == WriterStatistics(queued=0, written=3, dropped=0, failed=0)
        reader = JournalReader(store, ring)
        assert await reader.read("acme:eu", "billing", ids[0]) == {"entry_id": ids[0], "calls": []}
        await reader.delete("acme:eu", "billing", ids[0])
        await reader.delete("acme:eu", "billing", ids[0])  # already gone: not an error
        with pytest.raises(JournalNotFound):
            await reader.read("acme:eu", "billing", ids[0])
    keys = list_keys(moto.url, bucket, credentials=moto.admin, region=DEFAULT_REGION)
    assert keys == sorted(f"store/journal/v1/acme~3Aeu/billing/{entry_id}.jrnl" for entry_id in ids[1:])
