"""The id grammar (two levels of one alphabet) and the content-hash grammar."""

from __future__ import annotations

import pytest

import contract
from bundles.store import BundleLayout

HEX = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "value",
    ["a", "A", "0", "tenant-a", "com.acme.ext", "Com_Acme.Ext-1", "x" * 128, "acme:billing", "ext@vendor", "a:b@c"],
)
def test_ids_the_execute_contract_accepts(value: str) -> None:
    assert contract.is_id(value)


@pytest.mark.parametrize(
    "value",
    ["", "-a", ".a", "_a", ":a", "@a", "x" * 129, "a b", "a/b", "a\\b", "a\n", "a\x00", "é", "a%2F", "\u212a"],
)
def test_ids_refused_everywhere(value: str) -> None:
    assert not contract.is_id(value)
    assert not contract.is_safe_id(value)


def test_safe_ids_are_the_subset_without_colon_and_at() -> None:
    for value in ("tenant-a", "com.acme.ext", "Com_Acme.Ext-1", "x" * 128):
        assert contract.is_safe_id(value)
        assert contract.SAFE_ID_PATTERN.fullmatch(value)
    for value in ("acme:billing", "ext@vendor"):
        assert contract.is_id(value)
        assert not contract.is_safe_id(value)


def test_a_trailing_newline_is_not_an_id() -> None:
    # "^...$" with re.match let "tenant\n" through; ids reach logs and stream fields, so the grammar is fullmatch.
    assert not contract.is_id("tenant\n")
    assert contract.ID_PATTERN.fullmatch("tenant\n") is None


@pytest.mark.parametrize(
    ("value", "hex_digest"),
    [
        ("sha256:" + HEX, HEX),
        (HEX, HEX),
        ("sha256:" + HEX.upper(), HEX),
        (HEX.upper(), HEX),
        (" sha256:" + HEX + "\n", HEX),  # bundles.parse_content_hash has always trimmed
        (HEX + "\n", HEX),  # what the runner's "^…$" let through
    ],
)
def test_content_hashes_accepted(value: str, hex_digest: str) -> None:
    assert contract.parse_content_hash(value) == hex_digest


@pytest.mark.parametrize(
    "value", ["", "sha256:", HEX[:-1], HEX + "0", "sha256:" + HEX[:-1] + "g", "SHA256:" + HEX, "sha512:" + HEX,
              "sha256: " + HEX, "md5:" + HEX]
)
def test_content_hashes_refused(value: str) -> None:
    with pytest.raises(contract.ContentHashError):
        contract.parse_content_hash(value)


def test_prefixed_form_is_exact() -> None:
    assert contract.parse_prefixed_content_hash("sha256:" + HEX.upper()) == HEX
    for value in (HEX, " sha256:" + HEX, "sha256:" + HEX + " ", "sha256:" + HEX + "\n"):
        with pytest.raises(contract.ContentHashError):
            contract.parse_prefixed_content_hash(value)


def test_canonical_form_round_trips() -> None:
    assert contract.format_content_hash(HEX) == "sha256:" + HEX
    assert contract.parse_content_hash(contract.format_content_hash(HEX)) == HEX
    # Object keys take only the canonical form: what parse_content_hash returns.
    assert BundleLayout().prefix(HEX) == f"sha256/{HEX}"
    for value in (HEX.upper(), "sha256:" + HEX, HEX + "\n", HEX[:-1]):
        with pytest.raises(ValueError, match="64 lowercase hex"):
            BundleLayout().prefix(value)
