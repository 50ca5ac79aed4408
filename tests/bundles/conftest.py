"""Fixtures for the bundle tests: a moto S3 server with IAM auth on, fresh buckets, and stores of both kinds."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bundles.store import BundleStore, FileStore, S3Settings, S3Store
from tests._moto import (
    DEFAULT_REGION,
    MotoCredentials,
    create_bucket,
    enable_iam_auth,
    list_keys,
    moto_server,
)

_bucket_numbers = itertools.count()


@dataclass(frozen=True)
class MotoS3:
    """A running moto server with IAM auth enforced, and its admin credentials."""

    endpoint_url: str
    admin: MotoCredentials
    region: str = DEFAULT_REGION

    def settings(self, credentials: MotoCredentials | None = None, *, path_style: bool = True) -> S3Settings:
        creds = credentials or self.admin
        return S3Settings(
            access_key=creds.access_key,
            secret_key=creds.secret_key,
            endpoint_url=self.endpoint_url,
            region=self.region,
            force_path_style=path_style,
        )

    def env(self, credentials: MotoCredentials | None = None) -> dict[str, str]:
        """``STORAGE_S3_*`` variables for ``open_store``."""
        creds = credentials or self.admin
        return {
            "STORAGE_S3_ENDPOINT": self.endpoint_url,
            "STORAGE_S3_ACCESS_KEY": creds.access_key,
            "STORAGE_S3_SECRET_KEY": creds.secret_key,
            "STORAGE_S3_REGION": self.region,
            "STORAGE_S3_FORCE_PATH_STYLE": "true",
        }

    def new_bucket(self) -> str:
        name = f"test-{os.getpid()}-{next(_bucket_numbers)}"
        create_bucket(self.endpoint_url, name, credentials=self.admin, region=self.region)
        return name

    def keys(self, bucket: str) -> list[str]:
        return list_keys(self.endpoint_url, bucket, credentials=self.admin, region=self.region)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    with moto_server() as url:
        yield MotoS3(url, enable_iam_auth(url))


@pytest.fixture
def s3_bucket(moto_s3: MotoS3) -> str:
    """A new, empty bucket for this test."""
    return moto_s3.new_bucket()


@dataclass(frozen=True)
class Backend:
    """How to open the store under test, and how to see everything it has written (paths or keys)."""

    kind: str
    open: Callable[[], BundleStore]
    everything_written: Callable[[], list[str]]


@pytest.fixture(params=["file", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A ``FileStore`` rooted in ``tmp_path/store``, or an ``S3Store`` on a fresh bucket under ``bundles/``.

    ``everything_written`` lists every file under ``tmp_path`` (so escapes from the root show up) or every
    key in the bucket (so escapes from the prefix show up).
    """
    if request.param == "file":
        root = tmp_path / "store"

        def files() -> list[str]:
            return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if not p.is_dir())

        return Backend("file", lambda: FileStore(root), files)
    moto: MotoS3 = request.getfixturevalue("moto_s3")
    bucket = moto.new_bucket()
    return Backend(
        "s3",
        lambda: S3Store(moto.settings(), bucket=bucket, prefix="bundles", max_attempts=1),
        lambda: moto.keys(bucket),
    )


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[BundleStore]:
    store = backend.open()
    try:
        yield store
    finally:
        await store.aclose()
