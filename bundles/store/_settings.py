"""``S3Settings``: how to reach an S3 API (AWS S3, MinIO, ...), read from ``STORAGE_S3_*`` variables."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from .._errors import StoreError

__all__ = ["DEFAULT_S3_REGION", "S3_ENV_VARS", "S3Settings", "validate_bucket_name"]

DEFAULT_S3_REGION: Final = "us-east-1"

ENV_ENDPOINT: Final = "STORAGE_S3_ENDPOINT"
ENV_ACCESS_KEY: Final = "STORAGE_S3_ACCESS_KEY"
ENV_SECRET_KEY: Final = "STORAGE_S3_SECRET_KEY"  # noqa: S105 -- a variable name, not a secret
ENV_REGION: Final = "STORAGE_S3_REGION"
ENV_FORCE_PATH_STYLE: Final = "STORAGE_S3_FORCE_PATH_STYLE"
ENV_BUCKET: Final = "STORAGE_S3_BUCKET"
S3_ENV_VARS: Final = frozenset(
    {ENV_ENDPOINT, ENV_ACCESS_KEY, ENV_SECRET_KEY, ENV_REGION, ENV_FORCE_PATH_STYLE, ENV_BUCKET}
)

_REGION = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_IPV6 = re.compile(r"[0-9a-f:.]*:[0-9a-f:.]*")
_BOOLEANS: Final = {"true": True, "false": False}


def validate_bucket_name(name: str, *, source: str) -> str:
    """Return ``name`` if it is a valid S3 bucket name; ``source`` names where it came from in the error."""
    if not _BUCKET.fullmatch(name) or ".." in name:
        raise StoreError(
            f"{source}: {name[:80]!r} is not a valid S3 bucket name "
            "(3-63 characters of a-z 0-9 . -, starting and ending with a letter or digit)"
        )
    return name


def _endpoint(value: str) -> str:
    """Normalise and check an endpoint URL: http(s), a host, an optional port, nothing else."""
    parts = urllib.parse.urlsplit(value)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    host = parts.hostname or ""
    problem = None
    if parts.scheme not in ("http", "https"):
        problem = "must start with http:// or https://"
    elif parts.username is not None or parts.password is not None:
        problem = f"must not carry credentials (use {ENV_ACCESS_KEY} and {ENV_SECRET_KEY})"
    elif not (_HOSTNAME.fullmatch(host) or _IPV6.fullmatch(host)):
        problem = "has no valid host"
    elif not port_ok:
        problem = "has an invalid port"
    elif parts.path not in ("", "/") or parts.query or parts.fragment:
        problem = "must be scheme://host[:port] with no path, query or fragment"
    if problem is not None:
        raise StoreError(f"{ENV_ENDPOINT}={value[:200]!r} {problem}")
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class S3Settings:
    """Connection settings of the S3 backend.

    Attributes:
        endpoint_url: ``scheme://host[:port]``; ``None`` means AWS (``https://s3.<region>.amazonaws.com``).
        access_key: the access key id.
        secret_key: the secret access key (kept out of ``repr``).
        region: the SigV4 signing region.
        force_path_style: address buckets as ``endpoint/bucket/key`` (MinIO and most S3-compatible
            servers) instead of ``bucket.endpoint/key``.
        bucket: the default bucket, used when the store URL names none.
    """

    access_key: str
    secret_key: str = field(repr=False)
    endpoint_url: str | None = None
    region: str = DEFAULT_S3_REGION
    force_path_style: bool = False
    bucket: str | None = None

    @property
    def resolved_endpoint(self) -> str:
        """The endpoint actually used: ``endpoint_url`` or AWS's regional endpoint."""
        return self.endpoint_url or f"https://s3.{self.region}.amazonaws.com"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> S3Settings:
        """Build settings from ``STORAGE_S3_*`` variables.

        Raises:
            StoreError: a required variable is missing, a value is invalid, or an unknown ``STORAGE_S3_*``
                variable is set (a misspelt setting must not be silently ignored); the message names it.
        """
        unknown = sorted(name for name in env if name.startswith("STORAGE_S3_") and name not in S3_ENV_VARS)
        if unknown:
            raise StoreError(f"unknown setting {unknown[0]} (known: {', '.join(sorted(S3_ENV_VARS))})")

        def required(name: str) -> str:
            value = env.get(name, "")
            if not value:
                raise StoreError(f"{name} must be set for an s3:// bundle store")
            return value

        endpoint = env.get(ENV_ENDPOINT, "").strip()
        region = env.get(ENV_REGION, "").strip() or DEFAULT_S3_REGION
        if not _REGION.fullmatch(region):
            raise StoreError(f"{ENV_REGION}={region[:80]!r} is not a region name (like us-east-1)")
        path_style = env.get(ENV_FORCE_PATH_STYLE, "").strip().lower() or "false"
        if path_style not in _BOOLEANS:
            raise StoreError(f"{ENV_FORCE_PATH_STYLE} must be 'true' or 'false', got {path_style[:80]!r}")
        bucket = env.get(ENV_BUCKET, "").strip() or None
        if bucket is not None:
            validate_bucket_name(bucket, source=ENV_BUCKET)
        return cls(
            access_key=required(ENV_ACCESS_KEY),
            secret_key=required(ENV_SECRET_KEY),
            endpoint_url=_endpoint(endpoint) if endpoint else None,
            region=region,
            force_path_style=_BOOLEANS[path_style],
            bucket=bucket,
        )
