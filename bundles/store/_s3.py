"""``S3Store``: objects in an S3 bucket under a prefix (``s3://bucket/prefix``), over httpx with SigV4.

Requests are signed by botocore's maintained S3 SigV4 signer; only ``httpx.AsyncClient`` touches the
network, so the store runs under trio. Write-once uses S3's conditional write (``If-None-Match: *``),
which S3 and MinIO evaluate atomically: of concurrent writers exactly one gets 200, the rest 412 and then
compare bytes. A HEAD before the PUT spares re-uploading an existing object and keeps write-once (best
effort) on servers that ignore the condition.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from types import TracebackType
from typing import Final, final

import httpx
import trio
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .._errors import ObjectExists, ObjectNotFound, ObjectTooLarge, StoreError
from ._base import DEFAULT_CHUNK_SIZE, CappedDigest, StoreStatistics, check_get_args
from ._keys import MAX_KEY_LENGTH, validate_key
from ._settings import (
    ENV_ACCESS_KEY,
    ENV_FORCE_PATH_STYLE,
    ENV_REGION,
    ENV_SECRET_KEY,
    S3Settings,
    validate_bucket_name,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_POOL_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_RETRY_BACKOFF",
    "DEFAULT_WRITE_TIMEOUT",
    "S3Store",
]

DEFAULT_CONNECT_TIMEOUT: Final = 5.0
"""Seconds to establish a connection."""
DEFAULT_READ_TIMEOUT: Final = 30.0
"""Seconds to wait for the next bytes of a response (not for the whole response)."""
DEFAULT_WRITE_TIMEOUT: Final = 60.0
"""Seconds to wait for the socket to accept the next bytes of a request body."""
DEFAULT_POOL_TIMEOUT: Final = 10.0
"""Seconds to wait for a free pooled connection."""
DEFAULT_MAX_CONNECTIONS: Final = 32
DEFAULT_MAX_ATTEMPTS: Final = 3
"""Tries per request on connection errors and 500/502/503/504 (S3 asks clients to retry those)."""
DEFAULT_RETRY_BACKOFF: Final = 0.2
"""Seconds before the first retry; doubles each time."""
DEFAULT_MAX_ERROR_BODY: Final = 64 * 1024
"""Bytes of an error response read to find S3's error code."""

_RETRY_STATUSES: Final = frozenset({500, 502, 503, 504})
# Hashing the payload for the signature is CPU work: above this size it runs in a worker thread.
_INLINE_SIGN_LIMIT: Final = 256 * 1024
_XML_FIELD = re.compile(rb"<(Code|Message)>([^<]{0,512})</\1>")

_ACCESS_HINTS: Final = {
    "InvalidAccessKeyId": f"the server does not know this access key id (check {ENV_ACCESS_KEY})",
    "SignatureDoesNotMatch": f"the signature does not match (check {ENV_SECRET_KEY} and {ENV_REGION})",
    "InvalidToken": "the session token is invalid",
    "AccessDenied": "the credentials lack permission for this bucket or key",
    "AuthorizationHeaderMalformed": f"the request was signed for the wrong region (check {ENV_REGION})",
}


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _error_fields(body: bytes) -> tuple[str | None, str | None]:
    found = {m.group(1): m.group(2).decode("utf-8", "replace") for m in _XML_FIELD.finditer(body)}
    return found.get(b"Code"), found.get(b"Message")


@final
class S3Store:
    """The bundle store on an S3 API (AWS S3, MinIO, ...).

    Args:
        settings: endpoint, credentials, region and addressing style.
        bucket: the bucket; defaults to ``settings.bucket``.
        prefix: a key prefix (``a/b``) under which every key of this store lives.
        connect_timeout, read_timeout, write_timeout, pool_timeout: httpx timeouts, in seconds.
        max_connections: size of the connection pool.
        max_attempts: tries per request on connection errors and retryable statuses.
        retry_backoff: seconds before the first retry, doubling after each.
        chunk_size: bytes per step when streaming a GET.
        transport: an httpx transport to use instead of the default one (proxies, custom TLS, tests).

    Raises:
        StoreError: no bucket is given, or the bucket name is invalid.
        ValueError: the prefix is not a safe key.
    """

    def __init__(
        self,
        settings: S3Settings,
        *,
        bucket: str | None = None,
        prefix: str = "",
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
        pool_timeout: float = DEFAULT_POOL_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        name = bucket or settings.bucket
        if name is None:
            raise StoreError("no S3 bucket: name it in the store URL (s3://bucket/prefix) or STORAGE_S3_BUCKET")
        self._bucket = validate_bucket_name(name, source="bucket")
        self._prefix = validate_key(prefix) if prefix else ""
        if max_attempts < 1 or chunk_size <= 0:
            raise ValueError("max_attempts and chunk_size must be positive")
        self._max_attempts = max_attempts
        self._retry_backoff = retry_backoff
        self._chunk_size = chunk_size
        self._signer = S3SigV4Auth(Credentials(settings.access_key, settings.secret_key), "s3", settings.region)
        endpoint = urllib.parse.urlsplit(settings.resolved_endpoint)
        if settings.force_path_style:
            self._host = endpoint.netloc
            self._bucket_path = f"/{self._bucket}"
        else:
            if _is_ip_address(endpoint.hostname or ""):
                raise StoreError(
                    f"virtual-host addressing needs a DNS name, not {endpoint.hostname}: "
                    f"set {ENV_FORCE_PATH_STYLE}=true"
                )
            self._host = f"{self._bucket}.{endpoint.netloc}"
            self._bucket_path = ""
        self._origin = f"{endpoint.scheme}://{self._host}"
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=write_timeout, pool=pool_timeout),
            limits=httpx.Limits(max_connections=max_connections),
            follow_redirects=False,
            transport=transport,
        )
        self._bytes_read = 0
        self._bytes_written = 0
        self._objects_written = 0

    def __repr__(self) -> str:
        return f"S3Store({self.url!r}, endpoint={self._origin!r})"

    @property
    def url(self) -> str:
        """``s3://bucket/prefix`` of this store."""
        return f"s3://{self._bucket}/{self._prefix}".rstrip("/")

    def statistics(self) -> StoreStatistics:
        """Counters since the store was opened."""
        return StoreStatistics(self._bytes_read, self._bytes_written, self._objects_written)

    async def __aenter__(self) -> S3Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool; later calls raise ``StoreError``."""
        await self._client.aclose()

    # -- requests ----------------------------------------------------------------------------------------

    def _object_url(self, key: str) -> str:
        validate_key(key)
        name = f"{self._prefix}/{key}" if self._prefix else key
        if len(name) > MAX_KEY_LENGTH:
            raise ValueError(f"object key {key[:80]!r} is too long under prefix {self._prefix!r}")
        # Keys use URL-unreserved characters only, so quoting is a no-op kept as a guard.
        return f"{self._origin}{self._bucket_path}/{urllib.parse.quote(name, safe='/')}"

    def _sign(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, headers={"Host": self._host, **headers}, data=body)
        self._signer.add_auth(request)
        return {name: str(value) for name, value in request.headers.items()}

    async def _send(
        self,
        method: str,
        url: str,
        what: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        stream: bool = False,
    ) -> httpx.Response:
        """Sign and send one request, retrying connection errors and retryable statuses."""
        if self._client.is_closed:
            raise StoreError("S3 store is closed")
        delay = self._retry_backoff
        for attempt in range(1, self._max_attempts + 1):
            # Signed afresh on each attempt: the signature covers a timestamp.
            if len(body) > _INLINE_SIGN_LIMIT:
                signed = await trio.to_thread.run_sync(self._sign, method, url, headers or {}, body)
            else:
                signed = self._sign(method, url, headers or {}, body)
            request = self._client.build_request(method, url, headers=signed, content=body if method == "PUT" else None)
            try:
                response = await self._client.send(request, stream=stream)
            except httpx.TransportError as exc:
                if attempt == self._max_attempts:
                    raise StoreError(
                        f"S3 endpoint {self._origin} unreachable ({what}): {type(exc).__name__}: {exc}"
                    ) from exc
            else:
                if response.status_code not in _RETRY_STATUSES or attempt == self._max_attempts:
                    return response
                await response.aclose()
            await trio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    async def _error(self, response: httpx.Response, what: str, key: str | None = None) -> StoreError:
        """The store error for a failed response (reads at most ``DEFAULT_MAX_ERROR_BODY`` of its body)."""
        body = bytearray()
        try:
            body += response.content[:DEFAULT_MAX_ERROR_BODY]  # a response sent without stream=True
        except httpx.ResponseNotRead:
            try:
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) >= DEFAULT_MAX_ERROR_BODY:
                        break
            except httpx.HTTPError:
                pass  # the status alone still says what went wrong
        finally:
            await response.aclose()
        code, message = _error_fields(bytes(body[:DEFAULT_MAX_ERROR_BODY]))
        status = response.status_code
        if status == 404 and code != "NoSuchBucket" and key is not None:
            return ObjectNotFound(f"no object {key!r} in {self.url}")
        if status == 404 and (code == "NoSuchBucket" or key is None):
            return StoreError(f"S3 bucket {self._bucket!r} does not exist at {self._origin}")
        if status in (401, 403):
            hint = _ACCESS_HINTS.get(code or "", "check the credentials, region and bucket policy")
            return StoreError(f"S3 access denied ({code or status}) for {what}: {hint}")
        detail = f"{code}: {message}" if code else (message or response.reason_phrase)
        return StoreError(f"S3 {what} failed: HTTP {status} {detail}")

    async def _head(self, key: str) -> bool:
        url = self._object_url(key)
        response = await self._send("HEAD", url, f"HEAD {key!r}")
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise await self._error(response, f"HEAD {key!r}", key)

    # -- the BundleStore API -----------------------------------------------------------------------------

    async def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` once (conditional PUT; identical bytes already there are fine).

        Raises:
            ValueError: the key is not a safe key.
            ObjectExists: the key already holds different bytes.
            StoreError: the server is unreachable, refused the credentials, or failed.
        """
        url = self._object_url(key)
        data = bytes(data)
        if await self._head(key):
            await self._check_same(key, data)
            return
        for attempt in range(1, self._max_attempts + 1):
            response = await self._send(
                "PUT",
                url,
                f"PUT {key!r}",
                body=data,
                headers={"If-None-Match": "*", "Content-Type": "application/octet-stream"},
            )
            if response.status_code == 200:
                await response.aclose()
                self._bytes_written += len(data)
                self._objects_written += 1
                return
            if response.status_code == 412:
                await response.aclose()
                await self._check_same(key, data)
                return
            if response.status_code == 409 and attempt < self._max_attempts:
                # ConditionalRequestConflict: another conditional write to the key was in flight.
                await response.aclose()
                await trio.sleep(self._retry_backoff * attempt)
                continue
            raise await self._error(response, f"PUT {key!r}", key)

    async def replace_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key`` unconditionally (S3 PUTs are atomic); only for objects that are not
        content-addressed.

        Raises:
            ValueError: the key is not a safe key.
            StoreError: the server is unreachable, refused the credentials, or failed.
        """
        url = self._object_url(key)
        data = bytes(data)
        response = await self._send(
            "PUT", url, f"PUT {key!r}", body=data, headers={"Content-Type": "application/octet-stream"}
        )
        if response.status_code != 200:
            raise await self._error(response, f"PUT {key!r}", key)
        await response.aclose()
        self._bytes_written += len(data)
        self._objects_written += 1

    async def _check_same(self, key: str, data: bytes) -> None:
        try:
            existing = await self._get(key, max_bytes=len(data), sha256_hex=None)
        except ObjectTooLarge:
            raise ObjectExists(f"object {key!r} already exists with different (larger) content") from None
        if existing != data:
            raise ObjectExists(f"object {key!r} already exists with different content")

    async def get_bytes(self, key: str, *, max_bytes: int, sha256_hex: str | None = None) -> bytes:
        """Stream the object ``key``, at most ``max_bytes`` of it, checking ``sha256_hex`` when given.

        Raises:
            ValueError: the key is not a safe key, or an argument is malformed.
            ObjectNotFound: no object under ``key``.
            ObjectTooLarge: the object is bigger than ``max_bytes`` (from Content-Length before any body
                byte is read, else as soon as the stream passes the cap).
            IntegrityError: the bytes do not hash to ``sha256_hex``.
            StoreError: the server is unreachable, refused the credentials, failed, or cut the stream.
        """
        check_get_args(max_bytes, sha256_hex)
        return await self._get(key, max_bytes=max_bytes, sha256_hex=sha256_hex)

    async def _get(self, key: str, *, max_bytes: int, sha256_hex: str | None) -> bytes:
        url = self._object_url(key)
        what = f"GET {key!r}"
        response = await self._send("GET", url, what, headers={"Accept-Encoding": "identity"}, stream=True)
        try:
            if response.status_code != 200:
                raise await self._error(response, what, key)
            digest = CappedDigest(key, max_bytes=max_bytes, sha256_hex=sha256_hex)
            declared = response.headers.get("content-length", "")
            if declared.isdigit():
                digest.check_declared_size(int(declared))
            async for chunk in response.aiter_raw(self._chunk_size):
                self._bytes_read += len(chunk)
                digest.feed(chunk)
            return digest.finish()
        except httpx.HTTPError as exc:
            raise StoreError(f"S3 {what} failed mid-stream: {type(exc).__name__}: {exc}") from exc
        finally:
            await response.aclose()

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key`` (HEAD).

        Raises:
            ValueError: the key is not a safe key.
            StoreError: the server is unreachable, refused the credentials, or failed. (Without
                ``s3:ListBucket`` S3 answers a missing key with 403, which lands here too.)
        """
        return await self._head(key)

    async def delete(self, key: str) -> None:
        """Remove the object ``key`` (DELETE; S3 answers 204 whether or not it existed, and a 404 is accepted
        too).

        Raises:
            ValueError: the key is not a safe key.
            StoreError: the server is unreachable, refused the credentials (``s3:DeleteObject``), or failed.
        """
        url = self._object_url(key)
        response = await self._send("DELETE", url, f"DELETE {key!r}")
        if response.status_code in (200, 204):
            await response.aclose()
            return
        if response.status_code == 404:
            error = await self._error(response, f"DELETE {key!r}", key)
            if isinstance(error, ObjectNotFound):
                return
            raise error
        raise await self._error(response, f"DELETE {key!r}", key)

    async def ping(self) -> None:
        """Readiness probe: list at most zero keys under the prefix (ListObjectsV2, ``max-keys=0``).

        On AWS S3 this needs ``s3:ListBucket`` on the bucket (the permission that governs ListObjectsV2), the
        same grant that makes a missing key a 404 rather than a 403; a read-only runner needs nothing else
        but ``s3:GetObject`` on the keys.

        Raises:
            StoreError: the endpoint is unreachable, the bucket does not exist, or the credentials are
                refused; the message says which.
        """
        query = {"list-type": "2", "max-keys": "0"}
        if self._prefix:
            query["prefix"] = self._prefix + "/"
        # Sorted and fully encoded, so the query the signer canonicalises is the one sent.
        encoded = "&".join(
            f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
            for k, v in sorted(query.items())
        )
        url = f"{self._origin}{self._bucket_path or '/'}?{encoded}"
        response = await self._send("GET", url, "ping (ListObjectsV2)")
        if response.status_code != 200:
            raise await self._error(response, f"ping of bucket {self._bucket!r}")
        await response.aclose()
