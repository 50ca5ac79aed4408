"""``open_store``: a store from a ``BUNDLE_STORE_BASE``-style URL."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping

from .._errors import StoreError
from ._base import BundleStore
from ._file import FileStore
from ._keys import validate_key
from ._s3 import S3Store
from ._settings import ENV_BUCKET, S3Settings, validate_bucket_name

__all__ = ["open_store"]


def _file_store(url: str, parts: urllib.parse.SplitResult) -> FileStore:
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise StoreError(f"bundle store URL {url!r}: a file URL is file:///absolute/dir, with no host or query")
    path = urllib.parse.unquote(parts.path)
    if not path.startswith("/") or "\x00" in path:
        raise StoreError(f"bundle store URL {url!r}: the directory must be an absolute path")
    return FileStore(path)


def _s3_store(url: str, parts: urllib.parse.SplitResult, env: Mapping[str, str]) -> S3Store:
    if parts.query or parts.fragment or "@" in parts.netloc or ":" in parts.netloc:
        raise StoreError(f"bundle store URL {url!r}: an S3 URL is s3://bucket/prefix, with no port, user or query")
    settings = S3Settings.from_env(env)
    bucket = parts.netloc or settings.bucket
    if bucket is None:
        raise StoreError(f"bundle store URL {url!r} names no bucket and {ENV_BUCKET} is not set")
    validate_bucket_name(bucket, source=f"bundle store URL {url!r}")
    if parts.netloc and settings.bucket is not None and settings.bucket != parts.netloc:
        raise StoreError(f"bundle store URL {url!r} names bucket {parts.netloc!r} but {ENV_BUCKET}={settings.bucket!r}")
    prefix = parts.path.strip("/")
    if prefix:
        try:
            validate_key(prefix)
        except ValueError as exc:
            raise StoreError(f"bundle store URL {url!r}: bad prefix: {exc}") from None
    return S3Store(settings, bucket=bucket, prefix=prefix)


def open_store(url: str, *, env: Mapping[str, str] | None = None) -> BundleStore:
    """Open the bundle store at ``url`` (no I/O happens until the first call; ``ping`` to probe it).

    Args:
        url: ``file:///absolute/dir`` or ``s3://bucket/prefix`` (``s3:///prefix`` takes the bucket from
            ``STORAGE_S3_BUCKET``).
        env: where ``STORAGE_S3_*`` settings are read from; defaults to ``os.environ``.

    Raises:
        StoreError: the URL or a setting is invalid; the message names the URL or the variable.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        return _file_store(url, parts)
    if parts.scheme == "s3":
        return _s3_store(url, parts, os.environ if env is None else env)
    raise StoreError(f"bundle store URL {url!r}: the scheme must be file:// or s3://")
