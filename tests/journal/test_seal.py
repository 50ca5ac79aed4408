"""Sealed entries: the round trip, and every way a blob must refuse to open."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from journal import (
    JOURNAL_FORMAT,
    JournalCorrupt,
    JournalKeyError,
    JournalKeyring,
    entry_key,
    open_entry,
    seal_entry,
)

ENTRY = "0123456789abcdef" * 2
AAD = entry_key("acme", "billing", ENTRY)


def _doc() -> dict[str, Any]:
    return {
        "format": JOURNAL_FORMAT,
        "entry_id": ENTRY,
        "tenant_id": "acme",
        "calls": [{"i": 0, "fn": "wasi:random/random#get-random-u64", "args": [], "result": 42}],
        "output": [{"stream": "stdout", "text": "héllo ✓"}],
        "result": {"status": 200, "headers": {}, "body_b64": "aGk=", "error": None},
    }


@pytest.fixture
def ring() -> JournalKeyring:
    return JournalKeyring.parse(JournalKeyring.generate("k1"))


def test_round_trip(ring: JournalKeyring) -> None:
    blob = seal_entry(_doc(), ring, aad=AAD)
    assert blob.startswith(b"AJ1\x02k1")
    assert open_entry(blob, ring, aad=AAD) == _doc()


def test_blob_is_compressed_and_encrypted(ring: JournalKeyring) -> None:
    doc = _doc() | {"log": ["the same line, again and again"] * 500}
    blob = seal_entry(doc, ring, aad=AAD)
    assert len(blob) < len(orjson.dumps(doc)) / 5
    assert b"again" not in blob
    assert b"acme" not in blob


def test_each_seal_uses_a_fresh_nonce(ring: JournalKeyring) -> None:
    assert seal_entry(_doc(), ring, aad=AAD) != seal_entry(_doc(), ring, aad=AAD)


def test_an_older_key_still_opens_after_rotation(ring: JournalKeyring) -> None:
    blob = seal_entry(_doc(), ring, aad=AAD)
    old_text = f"{JournalKeyring.generate('k2')},k1:{base64.b64encode(ring.get('k1').secret).decode()}"
    rotated = JournalKeyring.parse(old_text)
    assert open_entry(blob, rotated, aad=AAD) == _doc()
    assert seal_entry(_doc(), rotated, aad=AAD).startswith(b"AJ1\x02k2")


def test_unknown_key_id_is_a_key_error(ring: JournalKeyring) -> None:
    blob = seal_entry(_doc(), ring, aad=AAD)
    other = JournalKeyring.parse(JournalKeyring.generate("k9"))
    with pytest.raises(JournalKeyError, match="no journal key with id 'k1'"):
        open_entry(blob, other, aad=AAD)


def test_same_key_id_other_bytes_does_not_open(ring: JournalKeyring) -> None:
    blob = seal_entry(_doc(), ring, aad=AAD)
    impostor = JournalKeyring.parse(JournalKeyring.generate("k1"))
    with pytest.raises(JournalCorrupt, match="does not authenticate"):
        open_entry(blob, impostor, aad=AAD)


def test_blob_moved_under_another_tenants_key_does_not_open(ring: JournalKeyring) -> None:
    blob = seal_entry(_doc(), ring, aad=AAD)
    for moved in (
        entry_key("globex", "billing", ENTRY),
        entry_key("acme", "payroll", ENTRY),
        entry_key("acme", "billing", "f" * 32),
    ):
        with pytest.raises(JournalCorrupt, match="stored under another key"):
            open_entry(blob, ring, aad=moved)


@pytest.mark.parametrize("position", [0, 5, 10, 20, -1, -17])
def test_any_flipped_byte_is_refused(ring: JournalKeyring, position: int) -> None:
    blob = bytearray(seal_entry(_doc(), ring, aad=AAD))
    blob[position] ^= 0x01
    with pytest.raises((JournalCorrupt, JournalKeyError)):
        open_entry(bytes(blob), ring, aad=AAD)


@pytest.mark.parametrize("data", [b"", b"AJ1", b"PK\x03\x04 not a journal", b"AJ1\x00" + b"\x00" * 40])
def test_not_a_journal_blob(ring: JournalKeyring, data: bytes) -> None:
    with pytest.raises(JournalCorrupt):
        open_entry(data, ring, aad=AAD)


def test_truncated_blob(ring: JournalKeyring) -> None:
    blob = seal_entry(_doc(), ring, aad=AAD)
    with pytest.raises(JournalCorrupt):
        open_entry(blob[:-1], ring, aad=AAD)
    with pytest.raises(JournalCorrupt, match="truncated"):
        open_entry(blob[:20], ring, aad=AAD)


def _forge(ring: JournalKeyring, plaintext: bytes) -> bytes:
    """A blob that authenticates but carries ``plaintext`` (what only a key holder could write)."""
    key = ring.primary
    header = b"AJ1" + bytes([len(key.key_id)]) + key.key_id.encode() + b"\x07" * 12
    return header + AESGCM(key.secret).encrypt(b"\x07" * 12, plaintext, header + AAD.encode())


def test_decompression_is_bounded(ring: JournalKeyring) -> None:
    bomb = zstandard.ZstdCompressor().compress(b"[" + b"0," * 600_000 + b"0]")
    assert len(bomb) < 10_000
    with pytest.raises(JournalCorrupt, match="larger than 1000000 bytes once decompressed"):
        open_entry(_forge(ring, bomb), ring, aad=AAD, max_document_bytes=1_000_000)


@pytest.mark.parametrize(
    ("plaintext", "message"),
    [
        (b"not zstd", "does not decompress"),
        (zstandard.ZstdCompressor().compress(b"{not json"), "is not JSON"),
        (zstandard.ZstdCompressor().compress(b"[1, 2]"), "is not a JSON object"),
    ],
)
def test_authenticated_garbage_is_corrupt(ring: JournalKeyring, plaintext: bytes, message: str) -> None:
    with pytest.raises(JournalCorrupt, match=message):
        open_entry(_forge(ring, plaintext), ring, aad=AAD)


def test_unencodable_document_is_a_type_error(ring: JournalKeyring) -> None:
    with pytest.raises(TypeError):
        seal_entry({"raw": b"bytes are tagged by the runner, never stored raw"}, ring, aad=AAD)
