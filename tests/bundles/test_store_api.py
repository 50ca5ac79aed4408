"""The bundle store's public names, pinned exactly (test_store_keys checks only the main ones)."""

from __future__ import annotations

from bundles import store


def test_public_names_are_pinned() -> None:
    assert set(store.__all__) == {
        "BUNDLE_FILENAME", "BundleLayout", "BundleStore", "DEFAULT_CHUNK_SIZE", "DEFAULT_CONNECT_TIMEOUT",
        "DEFAULT_KEY_TEMPLATE", "DEFAULT_MAX_ATTEMPTS", "DEFAULT_MAX_CONNECTIONS", "DEFAULT_POOL_TIMEOUT",
        "DEFAULT_READ_TIMEOUT", "DEFAULT_RETRY_BACKOFF", "DEFAULT_S3_REGION", "DEFAULT_WRITE_TIMEOUT",
        "ENTRY_FILENAME", "FileStore", "MANIFEST_FILENAME", "MAX_KEY_LENGTH", "S3Settings", "S3Store",
        "S3_ENV_VARS", "SIGNATURE_FILENAME", "StoreStatistics", "open_store", "validate_key",
    }
    assert len(store.__all__) == len(set(store.__all__))
    for name in store.__all__:
        assert hasattr(store, name), name
