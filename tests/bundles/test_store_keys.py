"""Key validation, the bundle layout, and the capped hashing reader shared by both backends."""

from __future__ import annotations

import hashlib

import pytest

import bundles.store
from bundles._errors import IntegrityError, ObjectTooLarge
from bundles.store import BundleLayout, validate_key
from bundles.store._base import CappedDigest

HEX = "0123456789abcdef" * 4
TENANT_TEMPLATE = "tenants/{tenant}/extensions/{extension}/sha256/{hex}"


def test_public_names() -> None:
    assert set(bundles.store.__all__) >= {
        "BundleLayout",
        "BundleStore",
        "FileStore",
        "S3Settings",
        "S3Store",
        "open_store",
        "validate_key",
    }
    for name in bundles.store.__all__:
        assert hasattr(bundles.store, name), name


def test_default_layout_keys() -> None:
    layout = BundleLayout()
    assert layout.key_template == "sha256/{hex}"
    assert layout.bundle_key(HEX) == f"sha256/{HEX}/bundle.tar.zst"
    assert layout.manifest_key(HEX) == f"sha256/{HEX}/manifest.json"
    assert layout.entry_key(HEX) == f"sha256/{HEX}/entry.wasm"
    assert layout.signature_key(HEX) == f"sha256/{HEX}/bundle.sig"
    assert layout.precompiled_key(HEX, "x86_64-linux-wt50") == f"sha256/{HEX}/precompiled/x86_64-linux-wt50.cwasm"


def test_tenant_layout_keys() -> None:
    layout = BundleLayout(TENANT_TEMPLATE)
    ctx = {"tenant": "3f1c9b1e-tenant", "extension": "com.acme.hello"}
    prefix = f"tenants/3f1c9b1e-tenant/extensions/com.acme.hello/sha256/{HEX}"
    assert layout.bundle_key(HEX, **ctx) == f"{prefix}/bundle.tar.zst"
    assert layout.signature_key(HEX, **ctx) == f"{prefix}/bundle.sig"
    assert layout.precompiled_key(HEX, "aarch64", **ctx) == f"{prefix}/precompiled/aarch64.cwasm"
    assert layout == BundleLayout(TENANT_TEMPLATE)


@pytest.mark.parametrize(
    ("ctx", "message"),
    [
        ({"tenant": "t"}, r"missing \['extension'\]"),
        ({"tenant": "t", "extension": "e", "extra": "x"}, r"unexpected \['extra'\]"),
        ({"tenant": "../other", "extension": "e"}, "tenant '../other' is not a single safe key segment"),
        ({"tenant": "a/b", "extension": "e"}, "not a single safe key segment"),
        ({"tenant": "t", "extension": ""}, "not a single safe key segment"),
        ({"tenant": "t", "extension": ".."}, "not a single safe key segment"),
    ],
)
def test_tenant_layout_rejects_bad_context(ctx: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BundleLayout(TENANT_TEMPLATE).bundle_key(HEX, **ctx)


@pytest.mark.parametrize("bad_hex", ["", "abc", HEX.upper(), HEX + "0", "g" * 64, "../" + HEX[3:]])
def test_layout_rejects_bad_hashes(bad_hex: str) -> None:
    with pytest.raises(ValueError, match="64 lowercase hex"):
        BundleLayout().bundle_key(bad_hex)


def test_layout_rejects_bad_targets() -> None:
    with pytest.raises(ValueError, match="target"):
        BundleLayout().precompiled_key(HEX, "../../evil")


@pytest.mark.parametrize(
    "template",
    ["sha256", "/abs/{hex}", "a//{hex}", "{hex}/../x", "x/{hex!r}", "x/{hex:>10}", "x/{hex.real}", "x/{0}/{hex}", "{"],
)
def test_layout_rejects_bad_templates(template: str) -> None:
    with pytest.raises(ValueError, match="key template"):
        BundleLayout(template)


@pytest.mark.parametrize("key", ["a", "sha256/abc/bundle.tar.zst", "a-b_c~d.e/f", "x" * 1024, "a..", "a/b..c"])
def test_valid_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "empty"),
        ("../x", "'..' segment"),
        ("/abs", "absolute"),
        ("a//b", "empty segment"),
        ("a\\b", "backslash"),
        ("a/.git", "starts with '.'"),
        ("a/b c", "characters outside"),
        ("a/\u00e9", "characters outside"),
        ("a\nb", "characters outside"),
        ("x" * 1025, "longer than 1024"),
    ],
)
def test_invalid_keys_say_why(key: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        validate_key(key)


def test_capped_digest_stops_at_the_cap_while_streaming() -> None:
    digest = CappedDigest("k", max_bytes=10, sha256_hex=None)
    digest.feed(b"12345")
    digest.feed(b"67890")
    with pytest.raises(ObjectTooLarge, match="larger than the limit of 10 bytes"):
        digest.feed(b"1")
    assert digest.size == 10
    assert digest.finish() == b"1234567890"


def test_capped_digest_checks_the_hash() -> None:
    good = hashlib.sha256(b"abc").hexdigest()
    digest = CappedDigest("k", max_bytes=10, sha256_hex=good)
    digest.feed(b"abc")
    assert digest.finish() == b"abc"
    bad = CappedDigest("k", max_bytes=10, sha256_hex=good)
    bad.feed(b"abd")
    with pytest.raises(IntegrityError, match=f"expected sha256:{good}"):
        bad.finish()
