"""The bundle store: write-once objects on a local directory (``file://``) or an S3 API (``s3://``).

``open_store(url)`` gives a ``BundleStore``; ``BundleLayout`` names a bundle's objects in it. Keys are
validated (``validate_key``) before any I/O, so a hostile key can never leave the store's root or prefix.
Errors come from the ``bundles`` error tree: ``StoreError`` and its ``ObjectNotFound``, ``ObjectExists``,
``ObjectTooLarge``, plus ``IntegrityError`` on a hash mismatch.
"""

from ._base import DEFAULT_CHUNK_SIZE, BundleStore, StoreStatistics
from ._file import FileStore
from ._keys import (
    BUNDLE_FILENAME,
    DEFAULT_KEY_TEMPLATE,
    ENTRY_FILENAME,
    MANIFEST_FILENAME,
    MAX_KEY_LENGTH,
    SIGNATURE_FILENAME,
    BundleLayout,
    validate_key,
)
from ._open import open_store
from ._s3 import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_POOL_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_WRITE_TIMEOUT,
    S3Store,
)
from ._settings import DEFAULT_S3_REGION, S3_ENV_VARS, S3Settings

__all__ = [
    "BUNDLE_FILENAME",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_KEY_TEMPLATE",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_POOL_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_RETRY_BACKOFF",
    "DEFAULT_S3_REGION",
    "DEFAULT_WRITE_TIMEOUT",
    "ENTRY_FILENAME",
    "MANIFEST_FILENAME",
    "MAX_KEY_LENGTH",
    "S3_ENV_VARS",
    "SIGNATURE_FILENAME",
    "BundleLayout",
    "BundleStore",
    "FileStore",
    "S3Settings",
    "S3Store",
    "StoreStatistics",
    "open_store",
    "validate_key",
]
