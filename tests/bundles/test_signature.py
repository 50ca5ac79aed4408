from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from bundles import (
    SignatureError,
    SignaturePolicy,
    TrustBundle,
    TrustBundleError,
    content_hash,
    generate_private_key,
    key_fingerprint,
    pack_directory,
    sign_bundle,
)
from tests.bundles._bundle_helpers import write_tree


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return pack_directory(write_tree(tmp_path_factory.mktemp("sig") / "src"))


def _public_pem(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _flip(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) // 2] ^= 0x80
    return bytes(out)


@pytest.mark.parametrize("algorithm", ["ed25519", "ecdsa-p256", "ecdsa-p256-sha256"])
def test_sign_and_verify_round_trip(bundle: bytes, algorithm: str) -> None:
    private_pem, public_pem = generate_private_key(algorithm)
    assert b"BEGIN PRIVATE KEY" in private_pem
    assert b"BEGIN PUBLIC KEY" in public_pem
    signature = sign_bundle(bundle, private_pem)
    assert b"\n" not in signature
    trust = TrustBundle.from_pem(public_pem)
    assert trust.verify(bundle, signature) == trust.fingerprints[0]
    # Surrounding whitespace (a trailing newline from an editor) does not matter.
    assert trust.verify(bundle, b"  " + signature + b"\n") == trust.fingerprints[0]
    with pytest.raises(SignatureError, match="does not verify"):
        trust.verify(_flip(bundle), signature)


def test_ed25519_signature_is_raw_64_bytes(bundle: bytes) -> None:
    private_pem, _ = generate_private_key("ed25519")
    assert len(base64.b64decode(sign_bundle(bundle, private_pem))) == 64


def test_cosign_style_ecdsa_signature_verifies(bundle: bytes) -> None:
    # What `cosign sign-blob --key cosign.key --output-signature bundle.sig` writes: base64(DER ECDSA-SHA256).
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.sign(bundle, ec.ECDSA(hashes.SHA256()))
    assert der[0] == 0x30  # an ASN.1 SEQUENCE, i.e. DER
    signature = base64.b64encode(der)
    trust = TrustBundle.from_pem(_public_pem(key))
    assert trust.verify(bundle, signature) == key_fingerprint(key.public_key())
    # A raw (r||s) encoding is not what cosign writes and is refused.
    r_s = bytes(64)
    with pytest.raises(SignatureError):
        trust.verify(bundle, base64.b64encode(r_s))


def test_cryptography_ed25519_signature_verifies(bundle: bytes) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    trust = TrustBundle.from_pem(_public_pem(key))
    assert trust.verify(bundle, base64.b64encode(key.sign(bundle))) == key_fingerprint(key.public_key())


def test_trust_bundle_with_several_keys(bundle: bytes) -> None:
    keys = [ed25519.Ed25519PrivateKey.generate(), ec.generate_private_key(ec.SECP256R1())]
    pem = b"# operator trust bundle\n" + b"\n".join(_public_pem(k) for k in keys)
    trust = TrustBundle.from_pem(pem)
    assert len(trust.fingerprints) == 2
    ecdsa_sig = base64.b64encode(keys[1].sign(bundle, ec.ECDSA(hashes.SHA256())))
    assert trust.verify(bundle, ecdsa_sig) == trust.fingerprints[1]
    ed_sig = base64.b64encode(keys[0].sign(bundle))
    assert trust.verify(bundle, ed_sig) == trust.fingerprints[0]


def test_signature_by_an_untrusted_key_is_refused(bundle: bytes) -> None:
    trusted_private, trusted_public = generate_private_key("ed25519")
    other_private, _ = generate_private_key("ed25519")
    policy = SignaturePolicy(TrustBundle.from_pem(trusted_public))
    digest = content_hash(bundle)
    assert policy.check(bundle, sign_bundle(bundle, trusted_private), digest).verified
    with pytest.raises(SignatureError, match="does not verify with any of the 1 trusted key") as info:
        policy.check(bundle, sign_bundle(bundle, other_private), digest)
    assert info.value.code == "signature_invalid"
    assert digest in str(info.value)


@pytest.mark.parametrize("signature", [None, b"", b"  \n"])
def test_missing_signature_under_a_trust_bundle_is_refused(bundle: bytes, signature: bytes | None) -> None:
    _, public_pem = generate_private_key("ecdsa-p256")
    policy = SignaturePolicy(TrustBundle.from_pem(public_pem))
    with pytest.raises(SignatureError, match="has no signature"):
        policy.check(bundle, signature, content_hash(bundle))


@pytest.mark.parametrize(
    ("signature", "fragment"),
    [(b"not base64 !!!", "not base64"), (b"QUJD" * 2000, "longer than")],
)
def test_malformed_signature(bundle: bytes, signature: bytes, fragment: str) -> None:
    _, public_pem = generate_private_key("ed25519")
    with pytest.raises(SignatureError, match=fragment):
        TrustBundle.from_pem(public_pem).verify(bundle, signature)


def test_unsigned_accepted_without_trust_bundle_with_one_warning_per_hash(
    bundle: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    policy = SignaturePolicy(None)
    other = _flip(bundle)
    caplog.set_level(logging.WARNING, logger="bundles.signature")
    for _ in range(3):
        status = policy.check(bundle, None, content_hash(bundle))
        assert (status.state, status.verified, status.key_fingerprint) == ("unsigned-dev", False, None)
        assert str(status) == "unsigned-dev"
    # The same hash written bare (as object keys carry it) is the same bundle: no second warning.
    policy.check(bundle, b"garbage signature is not looked at", content_hash(bundle).removeprefix("sha256:"))
    policy.check(other, None, content_hash(other))
    policy.check(other, None, content_hash(other))
    records = [r for r in caplog.records if r.name == "bundles.signature"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    assert content_hash(bundle) in records[0].getMessage()
    assert content_hash(other) in records[1].getMessage()


def test_warning_memory_is_bounded(bundle: bytes, caplog: pytest.LogCaptureFixture) -> None:
    policy = SignaturePolicy(None, max_warned_hashes=2)
    caplog.set_level(logging.WARNING, logger="bundles.signature")
    hashes_ = [f"{i:064x}" for i in range(3)]
    for h in hashes_ + hashes_[:1]:
        policy.check(bundle, None, h)
    # The oldest hash was forgotten after the third, so it warns again.
    assert len([r for r in caplog.records if r.name == "bundles.signature"]) == 4


@pytest.mark.parametrize(
    ("pem", "fragment"),
    [
        (b"", "no PEM PUBLIC KEY block"),
        (b"just some text\n", "no PEM PUBLIC KEY block"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "unreadable public key"),
    ],
)
def test_invalid_trust_bundles(pem: bytes, fragment: str) -> None:
    with pytest.raises(TrustBundleError, match=fragment) as info:
        TrustBundle.from_pem(pem)
    assert info.value.code == "invalid_trust_bundle"


def test_trust_bundle_refuses_private_keys_and_unsupported_types(tmp_path: Path) -> None:
    private_pem, public_pem = generate_private_key("ed25519")
    with pytest.raises(TrustBundleError, match="'PRIVATE KEY'"):
        TrustBundle.from_pem(public_pem + private_pem)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(TrustBundleError, match="unsupported key type"):
        TrustBundle.from_pem(_public_pem(rsa_key))
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(TrustBundleError, match="unsupported key type"):
        TrustBundle.from_pem(_public_pem(p384))
    with pytest.raises(TrustBundleError, match="cannot read trust bundle"):
        TrustBundle.from_file(tmp_path / "missing.pem")
    path = tmp_path / "trust.pem"
    path.write_bytes(public_pem)
    assert TrustBundle.from_file(path).fingerprints == TrustBundle.from_pem(public_pem).fingerprints


def test_sign_refuses_bad_private_keys(bundle: bytes) -> None:
    with pytest.raises(SignatureError, match="cannot load the private key"):
        sign_bundle(bundle, b"not a key")
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SignatureError, match="unsupported private key type"):
        sign_bundle(bundle, rsa_pem)
    with pytest.raises(ValueError, match="unknown signature algorithm"):
        generate_private_key("rsa")
