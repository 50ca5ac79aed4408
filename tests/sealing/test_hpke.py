"""The HPKE envelope (v2) against RFC 9180 directly, and v1 envelopes made before it still opening."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

import sealing

SECRETS = {"API_KEY": "sk-live-0123456789", "DB_PASSWORD": "p@ss wörd\n"}
V2 = "hpke-x25519-chacha20poly1305:v2"
V1 = "x25519-chacha20poly1305:v1"
# Made by sealing.seal before HPKE (commit 39dc6df), with the key pair stored beside them.
V1_FIXTURE: dict[str, Any] = json.loads((Path(__file__).parent / "fixtures" / "v1_envelopes.json").read_text())


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return sealing.generate_keypair()


def _flip(envelope: dict[str, str], position: int) -> dict[str, str]:
    raw = bytearray(base64.b64decode(envelope["ciphertext_b64"]))
    raw[position] ^= 0x01
    return {**envelope, "ciphertext_b64": base64.b64encode(bytes(raw)).decode()}


def test_default_algorithm_is_hpke() -> None:
    assert sealing.ALGORITHM == V2
    assert sealing.ENVELOPE_VERSION == "1"


def test_v2_round_trip_with_expiry(keys: tuple[str, str]) -> None:
    private, public = keys
    expiry = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    envelope = sealing.seal(SECRETS, public, tenant_id="tenant-a", extension_id="ext-1", expires_at=expiry)
    assert envelope == {"ciphertext_b64": envelope["ciphertext_b64"], "algorithm": V2, "version": "1",
                        "expires_at": "2030-01-01T12:00:00Z"}
    plaintext = json.dumps(SECRETS, separators=(",", ":"), ensure_ascii=False).encode()
    # enc (32-byte X25519 public key) || ciphertext || 16-byte Poly1305 tag; HPKE derives the nonce.
    assert len(base64.b64decode(envelope["ciphertext_b64"])) == 32 + len(plaintext) + 16
    opened = sealing.open_envelope(envelope, private, tenant_id="tenant-a", extension_id="ext-1",
                                   now=expiry - timedelta(seconds=1))
    assert opened == SECRETS


def test_v2_is_standard_hpke_with_the_documented_info(keys: tuple[str, str]) -> None:
    # Opened with cryptography's HPKE alone: base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
    # ChaCha20-Poly1305, the context as `info` — what docs/runner.md tells another implementation to do.
    private, public = keys
    envelope = sealing.seal(SECRETS, public, tenant_id="tenant-a", extension_id="ext-1")
    suite = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)
    info = b'["alga-ext-secrets-info:v2","hpke-x25519-chacha20poly1305:v2","tenant-a","ext-1",null]'
    key = X25519PrivateKey.from_private_bytes(base64.b64decode(private))
    plaintext = suite.decrypt(base64.b64decode(envelope["ciphertext_b64"]), key, info=info)
    assert json.loads(plaintext) == SECRETS


def test_v2_wrong_key_refused(keys: tuple[str, str]) -> None:
    _, public = keys
    other_private, _ = sealing.generate_keypair()
    envelope = sealing.seal(SECRETS, public, tenant_id="tenant-a", extension_id="ext-1")
    with pytest.raises(sealing.DecryptFailed) as info:
        sealing.open_envelope(envelope, other_private, tenant_id="tenant-a", extension_id="ext-1")
    assert info.value.code == "decrypt_failed"


@pytest.mark.parametrize(("tenant", "extension"), [("tenant-b", "ext-1"), ("tenant-a", "ext-2"), ("ext-1", "tenant-a")])
def test_v2_other_install_refused(keys: tuple[str, str], tenant: str, extension: str) -> None:
    private, public = keys
    envelope = sealing.seal(SECRETS, public, tenant_id="tenant-a", extension_id="ext-1")
    with pytest.raises(sealing.DecryptFailed):
        sealing.open_envelope(envelope, private, tenant_id=tenant, extension_id=extension)


@pytest.mark.parametrize("position", [0, 31, 32, 50, -16, -1])
def test_v2_tampered_refused(keys: tuple[str, str], position: int) -> None:
    private, public = keys
    envelope = _flip(sealing.seal(SECRETS, public, tenant_id="tenant-a", extension_id="ext-1"), position)
    with pytest.raises(sealing.DecryptFailed):
        sealing.open_envelope(envelope, private, tenant_id="tenant-a", extension_id="ext-1")


def test_v2_low_order_enc_refused(keys: tuple[str, str]) -> None:
    private, _ = keys
    # enc = the all-zero X25519 point (DH result all zero), then 20 bytes that can never authenticate.
    envelope = {"ciphertext_b64": base64.b64encode(bytes(52)).decode(), "algorithm": V2}
    with pytest.raises(sealing.DecryptFailed):
        sealing.open_envelope(envelope, private, tenant_id="t", extension_id="e")


@pytest.mark.parametrize("size", [0, 47])
def test_v2_too_short_is_invalid(keys: tuple[str, str], size: int) -> None:
    private, _ = keys
    envelope = {"ciphertext_b64": base64.b64encode(bytes(size)).decode(), "algorithm": V2}
    with pytest.raises(sealing.EnvelopeInvalid):
        sealing.open_envelope(envelope, private, tenant_id="t", extension_id="e")


def test_v2_needs_the_private_key(keys: tuple[str, str]) -> None:
    _, public = keys
    envelope = sealing.seal(SECRETS, public, tenant_id="tenant-a", extension_id="ext-1")
    with pytest.raises(sealing.KeyInvalid):
        sealing.open_envelope(envelope, None, tenant_id="tenant-a", extension_id="ext-1")


def test_relabelled_algorithm_refused(keys: tuple[str, str]) -> None:
    # The algorithm is part of the bound context and picks the construction: a label swap never opens.
    private, public = keys
    v2 = sealing.seal(SECRETS, public, tenant_id="tenant-a", extension_id="ext-1")
    with pytest.raises(sealing.DecryptFailed):
        sealing.open_envelope({**v2, "algorithm": V1}, private, tenant_id="tenant-a", extension_id="ext-1")
    v1 = V1_FIXTURE["envelope"]
    with pytest.raises(sealing.DecryptFailed):
        sealing.open_envelope({**v1, "algorithm": V2}, V1_FIXTURE["private_key_b64"], tenant_id="tenant-a",
                              extension_id="ext-1")


def test_v1_fixture_is_what_the_old_sealer_wrote() -> None:
    assert V1_FIXTURE["envelope"]["algorithm"] == V1
    assert V1_FIXTURE["envelope"]["version"] == "1"
    assert sealing.public_key_from_private(V1_FIXTURE["private_key_b64"]) == V1_FIXTURE["public_key_b64"]


def test_v1_envelope_still_opens() -> None:
    opened = sealing.open_envelope(V1_FIXTURE["envelope"], V1_FIXTURE["private_key_b64"], tenant_id="tenant-a",
                                   extension_id="ext-1")
    assert opened == SECRETS == V1_FIXTURE["secrets"]


def test_v1_expiry_still_enforced() -> None:
    envelope, private = V1_FIXTURE["envelope_expiring"], V1_FIXTURE["private_key_b64"]
    expiry = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    before = expiry - timedelta(seconds=1)
    assert sealing.open_envelope(envelope, private, tenant_id="tenant-a", extension_id="ext-1", now=before) == SECRETS
    with pytest.raises(sealing.EnvelopeExpired):
        sealing.open_envelope(envelope, private, tenant_id="tenant-a", extension_id="ext-1", now=expiry)
    edited = {**envelope, "expires_at": "2099-01-01T00:00:00Z"}
    with pytest.raises(sealing.DecryptFailed):
        sealing.open_envelope(edited, private, tenant_id="tenant-a", extension_id="ext-1", now=before)


@pytest.mark.parametrize(("tenant", "extension"), [("tenant-b", "ext-1"), ("tenant-a", "ext-2")])
def test_v1_other_install_refused(tenant: str, extension: str) -> None:
    with pytest.raises(sealing.DecryptFailed):
        sealing.open_envelope(V1_FIXTURE["envelope"], V1_FIXTURE["private_key_b64"], tenant_id=tenant,
                              extension_id=extension)


def test_v1_wrong_key_refused(keys: tuple[str, str]) -> None:
    private, _ = keys
    with pytest.raises(sealing.DecryptFailed):
        sealing.open_envelope(V1_FIXTURE["envelope"], private, tenant_id="tenant-a", extension_id="ext-1")


@pytest.mark.parametrize("position", [0, 32, 40, -1])
def test_v1_tampered_refused(position: int) -> None:
    with pytest.raises(sealing.DecryptFailed):
        sealing.open_envelope(_flip(V1_FIXTURE["envelope"], position), V1_FIXTURE["private_key_b64"],
                              tenant_id="tenant-a", extension_id="ext-1")
