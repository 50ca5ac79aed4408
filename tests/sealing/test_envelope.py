"""Sealed envelopes: round trip, and every way an envelope must refuse to open."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

import sealing

SECRETS = {"API_KEY": "sk-live-0123456789", "DB_PASSWORD": "p@ss wörd\n"}


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return sealing.generate_keypair()


def _seal(public: str, **kwargs: object) -> dict[str, str]:
    options: dict[str, object] = {"tenant_id": "tenant-a", "extension_id": "ext-1", **kwargs}
    return sealing.seal(SECRETS, public, **options)  # type: ignore[arg-type]


def test_exported_names() -> None:
    assert set(sealing.__all__) == {
        "ALGORITHM",
        "DEFAULT_MAX_ENVELOPE_BYTES",
        "ENVELOPE_VERSION",
        "INLINE_ALGORITHM",
        "DecryptFailed",
        "EnvelopeExpired",
        "EnvelopeInvalid",
        "KeyInvalid",
        "SealingError",
        "UnsupportedAlgorithm",
        "generate_keypair",
        "open_envelope",
        "public_key_from_private",
        "seal",
    }


def test_keypair_shape(keys: tuple[str, str]) -> None:
    private, public = keys
    assert len(base64.b64decode(private)) == 32
    assert len(base64.b64decode(public)) == 32
    assert sealing.public_key_from_private(private) == public


def test_round_trip(keys: tuple[str, str]) -> None:
    private, public = keys
    envelope = _seal(public)
    # New envelopes are HPKE (v2); the envelope object's own version is still 1 (tests/sealing/test_hpke.py).
    assert envelope["algorithm"] == "hpke-x25519-chacha20poly1305:v2"
    assert envelope["version"] == "1"
    assert "expires_at" not in envelope
    # The plaintext is nowhere in the envelope.
    assert "sk-live" not in json.dumps(envelope)
    opened = sealing.open_envelope(envelope, private, tenant_id="tenant-a", extension_id="ext-1")
    assert opened == SECRETS


def test_two_seals_differ(keys: tuple[str, str]) -> None:
    _, public = keys
    assert _seal(public)["ciphertext_b64"] != _seal(public)["ciphertext_b64"]


def test_wrong_key_fails(keys: tuple[str, str]) -> None:
    _, public = keys
    other_private, _ = sealing.generate_keypair()
    with pytest.raises(sealing.DecryptFailed) as info:
        sealing.open_envelope(_seal(public), other_private, tenant_id="tenant-a", extension_id="ext-1")
    assert info.value.code == "decrypt_failed"


@pytest.mark.parametrize("position", [0, 40, -1])
def test_tampered_byte_fails(keys: tuple[str, str], position: int) -> None:
    private, public = keys
    envelope = _seal(public)
    raw = bytearray(base64.b64decode(envelope["ciphertext_b64"]))
    raw[position] ^= 0x01
    envelope["ciphertext_b64"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(sealing.DecryptFailed):
        sealing.open_envelope(envelope, private, tenant_id="tenant-a", extension_id="ext-1")


@pytest.mark.parametrize(("tenant", "extension"), [("tenant-b", "ext-1"), ("tenant-a", "ext-2")])
def test_other_tenant_or_extension_fails(keys: tuple[str, str], tenant: str, extension: str) -> None:
    private, public = keys
    with pytest.raises(sealing.DecryptFailed):
        sealing.open_envelope(_seal(public), private, tenant_id=tenant, extension_id=extension)


def test_expired_envelope_refused(keys: tuple[str, str]) -> None:
    private, public = keys
    expiry = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    envelope = _seal(public, expires_at=expiry)
    assert envelope["expires_at"] == "2030-01-01T12:00:00Z"
    before = expiry - timedelta(seconds=1)
    assert sealing.open_envelope(envelope, private, tenant_id="tenant-a", extension_id="ext-1", now=before)
    with pytest.raises(sealing.EnvelopeExpired) as info:
        sealing.open_envelope(envelope, private, tenant_id="tenant-a", extension_id="ext-1", now=expiry)
    assert info.value.code == "envelope_expired"


def test_edited_expiry_fails(keys: tuple[str, str]) -> None:
    private, public = keys
    envelope = _seal(public, expires_at=datetime(2030, 1, 1, tzinfo=UTC))
    envelope["expires_at"] = "2099-01-01T00:00:00Z"
    with pytest.raises(sealing.DecryptFailed):
        sealing.open_envelope(envelope, private, tenant_id="tenant-a", extension_id="ext-1")
    # Dropping the expiry altogether does not help either.
    del envelope["expires_at"]
    with pytest.raises(sealing.DecryptFailed):
        sealing.open_envelope(envelope, private, tenant_id="tenant-a", extension_id="ext-1")


def test_inline_envelope_opens_without_key() -> None:
    payload = base64.b64encode(json.dumps({"TOKEN": "abc"}).encode()).decode()
    envelope = {"ciphertext_b64": payload, "algorithm": "inline/base64", "version": "1"}
    assert sealing.open_envelope(envelope, None, tenant_id="t", extension_id="e") == {"TOKEN": "abc"}
    # The reference may omit the algorithm: inline is the default.
    assert sealing.open_envelope({"ciphertext_b64": payload}, None, tenant_id="t", extension_id="e") == {
        "TOKEN": "abc"
    }


def test_inline_envelope_expiry_enforced() -> None:
    payload = base64.b64encode(json.dumps({"TOKEN": "abc"}).encode()).decode()
    envelope = {"ciphertext_b64": payload, "algorithm": "inline/base64", "expires_at": "2020-01-01T00:00:00Z"}
    with pytest.raises(sealing.EnvelopeExpired):
        sealing.open_envelope(envelope, None, tenant_id="t", extension_id="e")


def test_inline_envelope_non_string_values_refused() -> None:
    payload = base64.b64encode(json.dumps({"TOKEN": 123}).encode()).decode()
    with pytest.raises(sealing.EnvelopeInvalid) as info:
        sealing.open_envelope({"ciphertext_b64": payload, "algorithm": "inline/base64"}, None,
                              tenant_id="t", extension_id="e")
    assert "123" not in info.value.message


def test_seal_refuses_non_string_values(keys: tuple[str, str]) -> None:
    _, public = keys
    with pytest.raises(sealing.EnvelopeInvalid):
        sealing.seal({"A": 1}, public, tenant_id="t", extension_id="e")  # type: ignore[dict-item]


def test_unknown_algorithm_and_version(keys: tuple[str, str]) -> None:
    private, public = keys
    envelope = _seal(public)
    with pytest.raises(sealing.UnsupportedAlgorithm):
        sealing.open_envelope({**envelope, "algorithm": "rot13"}, private, tenant_id="tenant-a",
                              extension_id="ext-1")
    with pytest.raises(sealing.UnsupportedAlgorithm):
        sealing.open_envelope({**envelope, "version": "2"}, private, tenant_id="tenant-a", extension_id="ext-1")


@pytest.mark.parametrize(
    "envelope",
    [
        {},
        {"ciphertext_b64": 5, "algorithm": "x25519-chacha20poly1305:v1"},
        {"ciphertext_b64": "!!not base64!!", "algorithm": "x25519-chacha20poly1305:v1"},
        {"ciphertext_b64": "AAAA", "algorithm": "x25519-chacha20poly1305:v1"},
        {"ciphertext_b64": "AAAA", "algorithm": "inline/base64", "expires_at": "tomorrow"},
    ],
)
def test_malformed_envelopes(keys: tuple[str, str], envelope: dict[str, object]) -> None:
    private, _ = keys
    with pytest.raises(sealing.EnvelopeInvalid):
        sealing.open_envelope(envelope, private, tenant_id="t", extension_id="e")


def test_bad_keys(keys: tuple[str, str]) -> None:
    _, public = keys
    with pytest.raises(sealing.KeyInvalid):
        sealing.seal(SECRETS, "c2hvcnQ=", tenant_id="t", extension_id="e")
    with pytest.raises(sealing.KeyInvalid):
        sealing.open_envelope(_seal(public), None, tenant_id="tenant-a", extension_id="ext-1")
    with pytest.raises(ValueError, match="timezone-aware"):
        sealing.seal(SECRETS, public, tenant_id="t", extension_id="e", expires_at=datetime(2030, 1, 1))


def test_errors_share_a_base() -> None:
    for cls in (sealing.EnvelopeInvalid, sealing.EnvelopeExpired, sealing.DecryptFailed,
                sealing.UnsupportedAlgorithm, sealing.KeyInvalid):
        assert issubclass(cls, sealing.SealingError)
