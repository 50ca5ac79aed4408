"""S3Store specifics against moto's S3 server with IAM auth on: credentials, buckets, addressing, settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest
import trio

from bundles._errors import ObjectExists, ObjectNotFound, StoreError
from bundles.store import S3Settings, S3Store, open_store
from tests._moto import MotoCredentials, MotoServer, create_iam_user, put_object

if TYPE_CHECKING:
    from conftest import MotoS3

KEY = "sha256/" + "cd" * 32 + "/bundle.tar.zst"


def _store(moto: MotoS3, bucket: str, credentials: MotoCredentials | None = None) -> S3Store:
    return S3Store(moto.settings(credentials), bucket=bucket, max_attempts=1)


class _InterposingTransport(httpx.AsyncBaseTransport):
    """Runs ``before_put`` (in a thread) just before forwarding the first PUT: another writer slips in
    between the store's HEAD (404) and its conditional PUT."""

    def __init__(self, before_put: Callable[[], None]) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._before_put: Callable[[], None] | None = before_put

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and self._before_put is not None:
            hook, self._before_put = self._before_put, None
            await trio.to_thread.run_sync(hook)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.mark.parametrize(("theirs", "outcome"), [(b"their bytes", "exists"), (b"our bytes", "ok")])
async def test_conditional_put_loses_to_a_writer_that_slipped_in(
    moto_s3: MotoS3, s3_bucket: str, theirs: bytes, outcome: str
) -> None:
    def other_writer() -> None:
        put_object(moto_s3.endpoint_url, s3_bucket, KEY, theirs, credentials=moto_s3.admin)

    transport = _InterposingTransport(other_writer)
    async with S3Store(moto_s3.settings(), bucket=s3_bucket, transport=transport) as store:
        if outcome == "exists":
            with pytest.raises(ObjectExists):
                await store.put_bytes(KEY, b"our bytes")
        else:
            await store.put_bytes(KEY, b"our bytes")
        # If-None-Match: * made the server refuse our PUT (412): the other writer's object stands.
        assert store.statistics().objects_written == 0
        assert await store.get_bytes(KEY, max_bytes=100) == theirs


async def test_wrong_secret_is_a_clear_access_denied(moto_s3: MotoS3, s3_bucket: str) -> None:
    async with _store(moto_s3, s3_bucket) as good:
        await good.put_bytes(KEY, b"bytes")
    wrong = MotoCredentials(moto_s3.admin.access_key, "not-the-secret")
    async with _store(moto_s3, s3_bucket, wrong) as store:
        with pytest.raises(StoreError, match=r"access denied \(SignatureDoesNotMatch\).*STORAGE_S3_SECRET_KEY"):
            await store.ping()
        # An existing object read with bad credentials is an access error, never "not found".
        with pytest.raises(StoreError, match="access denied") as info:
            await store.get_bytes(KEY, max_bytes=100)
        assert not isinstance(info.value, ObjectNotFound)
        with pytest.raises(StoreError, match="access denied"):
            await store.put_bytes("other", b"x")
    assert moto_s3.keys(s3_bucket) == [KEY]


async def test_unknown_access_key_is_a_clear_access_denied(moto_s3: MotoS3, s3_bucket: str) -> None:
    async with _store(moto_s3, s3_bucket, MotoCredentials("AKIAUNKNOWN000000000", "x")) as store:
        with pytest.raises(StoreError, match=r"access denied \(InvalidAccessKeyId\).*STORAGE_S3_ACCESS_KEY"):
            await store.ping()


async def test_user_without_permission_gets_access_denied(moto_s3: MotoS3, s3_bucket: str) -> None:
    nobody = create_iam_user(moto_s3.endpoint_url, f"nobody-{s3_bucket}", credentials=moto_s3.admin)
    async with _store(moto_s3, s3_bucket, nobody) as store:
        with pytest.raises(StoreError, match=r"access denied \(AccessDenied\)"):
            await store.ping()


def read_only_policy(bucket: str) -> dict[str, object]:
    """What a runner needs on AWS S3: ``s3:GetObject`` on the keys and ``s3:ListBucket`` on the bucket (the
    permission AWS checks for ListObjectsV2, which ``ping`` sends).

    moto (5.2.6, the locked version) differs from AWS here: it authorises ListObjectsV2 against an action named
    ``s3:ListObjectsV2``, which AWS does not have. The statement grants both so the policy is right for AWS and
    passes on moto; neither grants a write.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::{bucket}/*"},
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:ListObjectsV2"],
                "Resource": f"arn:aws:s3:::{bucket}",
            },
        ],
    }


async def test_read_only_user_pings_and_reads_but_cannot_write(moto_s3: MotoS3, s3_bucket: str) -> None:
    policy = read_only_policy(s3_bucket)
    reader = create_iam_user(moto_s3.endpoint_url, f"reader-{s3_bucket}", credentials=moto_s3.admin, policy=policy)
    async with _store(moto_s3, s3_bucket) as admin_store:
        await admin_store.put_bytes(KEY, b"published")
    async with _store(moto_s3, s3_bucket, reader) as store:
        await store.ping()
        assert await store.get_bytes(KEY, max_bytes=100) == b"published"
        with pytest.raises(StoreError, match="access denied"):
            await store.put_bytes("sha256/new", b"x")
        with pytest.raises(StoreError, match="access denied"):
            await store.delete(KEY)
    assert moto_s3.keys(s3_bucket) == [KEY]


async def test_missing_bucket(moto_s3: MotoS3) -> None:
    async with _store(moto_s3, "no-such-bucket") as store:
        with pytest.raises(StoreError, match="bucket 'no-such-bucket' does not exist"):
            await store.ping()
        with pytest.raises(StoreError, match="does not exist") as info:
            await store.get_bytes(KEY, max_bytes=10)
        assert not isinstance(info.value, ObjectNotFound)
        # Deleting from a bucket that is not there is a store error, not "already deleted".
        with pytest.raises(StoreError, match="does not exist"):
            await store.delete(KEY)


async def test_ping_against_a_stopped_server() -> None:
    server = MotoServer()
    url = await trio.to_thread.run_sync(server.start)
    settings = S3Settings("any", "any", endpoint_url=url, force_path_style=True)  # auth is off on this one
    await trio.to_thread.run_sync(lambda: server.stop())
    async with S3Store(settings, bucket="some-bucket", max_attempts=2, retry_backoff=0.01) as store:
        with pytest.raises(StoreError, match=rf"S3 endpoint {url} unreachable \(ping"):
            await store.ping()
        with pytest.raises(StoreError, match="unreachable"):
            await store.get_bytes(KEY, max_bytes=10)


async def test_ping_when_the_server_goes_away() -> None:
    server = MotoServer()
    url = await trio.to_thread.run_sync(server.start)
    try:
        settings = S3Settings("any", "any", endpoint_url=url, force_path_style=True)
        async with S3Store(settings, bucket="gone-soon", max_attempts=1) as store:
            with pytest.raises(StoreError, match="does not exist"):
                await store.ping()  # the server answers: no such bucket
            await trio.to_thread.run_sync(lambda: server.stop())
            with pytest.raises(StoreError, match="unreachable"):
                await store.ping()
    finally:
        server.stop()


class _PinnedTransport(httpx.AsyncBaseTransport):
    """Connects every request to 127.0.0.1 and keeps its Host header: a DNS override, like curl --resolve."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(host="127.0.0.1")
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_virtual_host_style(moto_s3: MotoS3, s3_bucket: str) -> None:
    port = httpx.URL(moto_s3.endpoint_url).port
    settings = S3Settings(
        moto_s3.admin.access_key,
        moto_s3.admin.secret_key,
        endpoint_url=f"http://s3.store-test.invalid:{port}",
        force_path_style=False,
    )
    async with S3Store(settings, bucket=s3_bucket, prefix="vh", transport=_PinnedTransport()) as store:
        await store.ping()
        await store.put_bytes(KEY, b"virtual")
        assert await store.get_bytes(KEY, max_bytes=10) == b"virtual"
        assert await store.exists(KEY)
    # The bucket came from the Host header (bucket.s3.store-test.invalid), not from the path.
    assert moto_s3.keys(s3_bucket) == ["vh/" + KEY]


def test_virtual_host_style_needs_a_host_name() -> None:
    settings = S3Settings("ak", "sk", endpoint_url="http://127.0.0.1:9000", force_path_style=False)
    with pytest.raises(StoreError, match="STORAGE_S3_FORCE_PATH_STYLE=true"):
        S3Store(settings, bucket="some-bucket")


async def test_open_store_with_bucket_and_prefix_from_the_url(moto_s3: MotoS3, s3_bucket: str) -> None:
    store = open_store(f"s3://{s3_bucket}/tenant-a/store/", env=moto_s3.env())
    assert isinstance(store, S3Store)
    async with store:
        await store.ping()
        await store.put_bytes(KEY, b"prefixed")
    assert moto_s3.keys(s3_bucket) == ["tenant-a/store/" + KEY]


async def test_open_store_with_bucket_from_the_environment(moto_s3: MotoS3, s3_bucket: str) -> None:
    store = open_store("s3:///p", env={**moto_s3.env(), "STORAGE_S3_BUCKET": s3_bucket})
    async with store:
        await store.put_bytes(KEY, b"env bucket")
    assert moto_s3.keys(s3_bucket) == ["p/" + KEY]


def test_open_store_bucket_conflicts_and_absence(moto_s3: MotoS3) -> None:
    with pytest.raises(StoreError, match="names bucket 'aaa' but STORAGE_S3_BUCKET='bbb'"):
        open_store("s3://aaa/p", env={**moto_s3.env(), "STORAGE_S3_BUCKET": "bbb"})
    with pytest.raises(StoreError, match="names no bucket and STORAGE_S3_BUCKET is not set"):
        open_store("s3:///p", env=moto_s3.env())
    with pytest.raises(StoreError, match="bad prefix"):
        open_store("s3://aaa/a/../b", env=moto_s3.env())
    with pytest.raises(StoreError, match="not a valid S3 bucket name"):
        open_store("s3://A_B/p", env=moto_s3.env())
    with pytest.raises(StoreError, match="STORAGE_S3_ACCESS_KEY must be set"):
        open_store("s3://aaa/p", env={})


def test_open_store_rejects_other_schemes() -> None:
    with pytest.raises(StoreError, match=r"file:// or s3://"):
        open_store("http://example.com/bundles", env={})


BASE_ENV = {"STORAGE_S3_ACCESS_KEY": "ak", "STORAGE_S3_SECRET_KEY": "sk"}


def test_settings_from_env_defaults_and_values() -> None:
    settings = S3Settings.from_env(BASE_ENV)
    assert settings == S3Settings("ak", "sk")
    assert settings.region == "us-east-1"
    assert settings.force_path_style is False
    assert settings.resolved_endpoint == "https://s3.us-east-1.amazonaws.com"
    full = S3Settings.from_env(
        {
            **BASE_ENV,
            "STORAGE_S3_ENDPOINT": "http://minio:9000/",
            "STORAGE_S3_REGION": "eu-west-3",
            "STORAGE_S3_FORCE_PATH_STYLE": "TRUE",
            "STORAGE_S3_BUCKET": "ext-bundles",
            "UNRELATED": "ignored",
        }
    )
    assert full == S3Settings("ak", "sk", "http://minio:9000", "eu-west-3", True, "ext-bundles")


async def test_secret_key_stays_out_of_repr() -> None:
    settings = S3Settings.from_env({**BASE_ENV, "STORAGE_S3_SECRET_KEY": "very-secret-value"})
    assert "very-secret-value" not in repr(settings)
    async with S3Store(settings, bucket="some-bucket") as store:
        assert "very-secret-value" not in repr(store)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STORAGE_S3_ENDPOINT", "minio:9000"),
        ("STORAGE_S3_ENDPOINT", "ftp://minio"),
        ("STORAGE_S3_ENDPOINT", "http://user:pw@minio:9000"),
        ("STORAGE_S3_ENDPOINT", "http://minio:9000/bucket"),
        ("STORAGE_S3_ENDPOINT", "http://minio:notaport"),
        ("STORAGE_S3_ENDPOINT", "http://min io"),
        ("STORAGE_S3_REGION", "EU WEST"),
        ("STORAGE_S3_FORCE_PATH_STYLE", "yes"),
        ("STORAGE_S3_BUCKET", "No_Such"),
        ("STORAGE_S3_ACCESS_KEY", ""),
        ("STORAGE_S3_SECRET_KEY", ""),
        ("STORAGE_S3_FORCE_PATHSTYLE", "true"),
    ],
)
def test_settings_errors_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(StoreError, match=variable):
        S3Settings.from_env({**BASE_ENV, variable: value})
