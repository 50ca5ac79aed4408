"""Errors raised by the bundle format, signatures and the bundle store.

The tree::

    BundleError                      anything wrong with a bundle or its storage
    ├── ManifestError                manifest.json is missing, not JSON, or breaks the schema (.path names the field)
    ├── ArchiveError                 a member is hostile or the archive is malformed/too big (.member names it)
    │   └── EntryError               the component entry is missing or is not a WebAssembly component
    ├── ContentHashError             a content hash is not ``sha256:<64 hex>`` or 64 hex (also a ValueError)
    ├── IntegrityError               bytes do not hash to the content hash they were asked for
    ├── SignatureError               missing, malformed, or untrusted signature under a trust bundle
    ├── TrustBundleError             the trust bundle (PEM of public keys) is empty, unreadable or invalid
    └── StoreError                   the bundle store failed (I/O, network, auth)
        ├── ObjectNotFound           no object under that key
        ├── ObjectExists             write-once: the key holds other bytes
        └── ObjectTooLarge           an object exceeds the caller's size cap

Each carries a short machine ``code`` (stable, used on the wire and in metrics) and a human message.
"""

from __future__ import annotations


class BundleError(Exception):
    """Base of every bundle, signature and store error."""

    code: str = "bundle_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ManifestError(BundleError):
    """manifest.json is invalid; ``path`` names the offending field (e.g. ``api.endpoints[2].method``)."""

    code = "invalid_manifest"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"manifest {path}: {message}" if path else f"manifest: {message}")
        self.path = path


class ArchiveError(BundleError):
    """The archive is malformed or hostile; ``member`` names the offending member when there is one."""

    code = "invalid_archive"

    def __init__(self, message: str, member: str | None = None) -> None:
        super().__init__(f"{member!r}: {message}" if member is not None else message)
        self.member = member


class EntryError(ArchiveError):
    """The component entry is missing or is not a WebAssembly component."""

    code = "invalid_entry"


class ContentHashError(BundleError, ValueError):
    """A content hash string is malformed (not ``sha256:<64 hex>`` nor 64 bare hex digits)."""

    code = "invalid_content_hash"


class IntegrityError(BundleError):
    """Bytes do not match the content hash they were fetched or cached under."""

    code = "hash_mismatch"


class SignatureError(BundleError):
    """The detached signature is missing, malformed, or not made by a trusted key."""

    code = "signature_invalid"


class TrustBundleError(BundleError):
    """The signing trust bundle is empty, unreadable, or holds something other than supported public keys."""

    code = "invalid_trust_bundle"


class StoreError(BundleError):
    """The bundle store could not complete an operation."""

    code = "store_error"


class ObjectNotFound(StoreError):
    code = "not_found"


class ObjectExists(StoreError):
    """Write-once violation: the key already holds different bytes."""

    code = "object_exists"


class ObjectTooLarge(StoreError):
    code = "too_large"
