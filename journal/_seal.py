"""Sealing an entry document: orjson -> zstd -> AES-256-GCM, bound to the object key it is stored under.

The blob::

    b"AJ1" | key id length (1 byte) | key id (ASCII) | nonce (12 bytes) | AES-GCM(zstd(json)) with its 16-byte tag

The associated data is the header (magic, key id, nonce) followed by the object key (``aad``), so a blob
copied under another tenant's, extension's or entry's key, or with its key id rewritten, does not open.
Nonces are random (96 bits): NIST bounds one key to 2^32 such messages, billions of entries; rotate long before.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import Any, Final

import orjson
import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._errors import JournalCorrupt
from ._keys import JournalKeyring

__all__ = [
    "DEFAULT_MAX_DOCUMENT_BYTES",
    "MAGIC",
    "NONCE_BYTES",
    "ZSTD_LEVEL",
    "encode_document",
    "open_entry",
    "seal_document",
    "seal_entry",
]

MAGIC: Final = b"AJ1"
NONCE_BYTES: Final = 12
ZSTD_LEVEL: Final = 3
"""zstd's default level: entries are mostly JSON text and compress several-fold at little CPU cost."""
DEFAULT_MAX_DOCUMENT_BYTES: Final = 8 * 1024 * 1024
"""The largest entry document (its JSON) written or opened: the writer's default cap, and the bound on
decompression when opening (a hostile blob cannot expand past it)."""

_TAG_BYTES: Final = 16


def encode_document(doc: Mapping[str, Any]) -> bytes:
    """The document's JSON (orjson): the size the writer's cap applies to, and a snapshot of ``doc``.

    Raises:
        TypeError: ``doc`` holds something JSON cannot carry (a non-string key, a set, bytes, ...).
    """
    return orjson.dumps(doc)


def seal_document(document: bytes, keyring: JournalKeyring, *, aad: str) -> bytes:
    """Compress and encrypt a document already encoded by ``encode_document`` (CPU work: run it in a thread
    when the document is large)."""
    key = keyring.primary
    kid = key.key_id.encode("ascii")
    nonce = os.urandom(NONCE_BYTES)
    header = MAGIC + bytes([len(kid)]) + kid + nonce
    compressed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(document)
    return header + AESGCM(key.secret).encrypt(nonce, compressed, header + aad.encode("utf-8"))


def seal_entry(doc: Mapping[str, Any], keyring: JournalKeyring, *, aad: str) -> bytes:
    """Seal an entry document with the keyring's primary key, bound to ``aad`` (the object key).

    Raises:
        TypeError: ``doc`` is not JSON-encodable.
    """
    return seal_document(encode_document(doc), keyring, aad=aad)


def open_entry(
    data: bytes, keyring: JournalKeyring, *, aad: str, max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
) -> dict[str, Any]:
    """Open a sealed entry stored under the object key ``aad``.

    Raises:
        JournalKeyError: the entry was sealed with a key id this keyring does not hold.
        JournalCorrupt: not a journal blob, authentication failed (wrong key bytes, tampered, or sealed under
            another object key), the plaintext is over ``max_document_bytes``, or not a JSON object.
    """
    view = bytes(data)
    if len(view) < len(MAGIC) + 1 or not view.startswith(MAGIC):
        raise JournalCorrupt(f"not a journal entry (expected the {MAGIC.decode()} header)")
    kid_len = view[len(MAGIC)]
    body_at = len(MAGIC) + 1 + kid_len + NONCE_BYTES
    if kid_len == 0 or len(view) < body_at + _TAG_BYTES:
        raise JournalCorrupt("journal entry is truncated")
    try:
        key_id = view[len(MAGIC) + 1 : len(MAGIC) + 1 + kid_len].decode("ascii")
    except UnicodeDecodeError:
        raise JournalCorrupt("journal entry header holds a malformed key id") from None
    key = keyring.get(key_id)
    header = view[:body_at]
    nonce = header[-NONCE_BYTES:]
    try:
        compressed = AESGCM(key.secret).decrypt(nonce, view[body_at:], header + aad.encode("utf-8"))
    except InvalidTag:
        raise JournalCorrupt(
            f"journal entry does not authenticate under key {key_id!r} as {aad[:200]!r} "
            "(wrong key, tampered bytes, or stored under another key)"
        ) from None
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(compressed))
        parts: list[bytes] = []
        size = 0
        while size <= max_document_bytes:
            part = reader.read(max_document_bytes + 1 - size)
            if not part:
                break
            parts.append(part)
            size += len(part)
        document = b"".join(parts)
    except zstandard.ZstdError as exc:
        raise JournalCorrupt(f"journal entry does not decompress: {exc}") from None
    if len(document) > max_document_bytes:
        raise JournalCorrupt(f"journal entry is larger than {max_document_bytes} bytes once decompressed")
    try:
        doc = orjson.loads(document)
    except orjson.JSONDecodeError:
        raise JournalCorrupt("journal entry is not JSON") from None
    if not isinstance(doc, dict):
        raise JournalCorrupt("journal entry is not a JSON object")
    return doc
