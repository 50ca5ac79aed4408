"""Signed /ext-ui tokens: bound to (tenant, extension, hash), expiring, and worthless under another key."""

from __future__ import annotations

import pytest

from contract import UiUrlSigner, signed_ui_path, split_ui_token

KEY = "ui-signing-key-0123456789"
HEX = "ab" * 32
OTHER_HEX = "cd" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_names_its_tenant_until_it_expires() -> None:
    clock = Clock()
    signer = UiUrlSigner(KEY, clock=clock)
    token = signer.issue(tenant="acme", extension="kitchen-sink", hex_digest=HEX, ttl_s=60)
    assert all(ch.isalnum() or ch in "-_." for ch in token)  # one URL path segment, nothing to escape
    assert signer.verify(token, extension="kitchen-sink", hex_digest=HEX) == "acme"
    clock.now += 59
    assert signer.verify(token, extension="kitchen-sink", hex_digest=HEX) == "acme"
    clock.now += 1
    assert signer.verify(token, extension="kitchen-sink", hex_digest=HEX) is None


def test_a_token_is_worth_nothing_elsewhere() -> None:
    signer = UiUrlSigner(KEY)
    token = signer.issue(tenant="acme", extension="kitchen-sink", hex_digest=HEX, ttl_s=60)
    assert signer.verify(token, extension="other-ext", hex_digest=HEX) is None
    assert signer.verify(token, extension="kitchen-sink", hex_digest=OTHER_HEX) is None
    assert UiUrlSigner("another-key-0123456789").verify(token, extension="kitchen-sink", hex_digest=HEX) is None
    body, _, signature = token.rpartition(".")
    forged = UiUrlSigner("another-key-0123456789").issue(tenant="globex", extension="kitchen-sink",
                                                         hex_digest=HEX, ttl_s=60)
    assert signer.verify(forged.rpartition(".")[0] + "." + signature, extension="kitchen-sink", hex_digest=HEX) is None
    for junk in ("", "x", "x.y", "é.é", "a" * 5000, body, f"{body}.", f"{body}.{signature[:-1]}"):
        assert signer.verify(junk, extension="kitchen-sink", hex_digest=HEX) is None
    assert "ui-signing-key" not in repr(signer)


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        ("~t/abc/app.js", ("abc", "app.js", True)),
        ("~t/abc/", ("abc", "", True)),
        ("~t/abc", ("abc", "", False)),
        ("app.js", (None, "app.js", True)),
        ("", (None, "", True)),
    ],
)
def test_split(rest: str, expected: tuple[str | None, str, bool]) -> None:
    assert split_ui_token(rest) == expected


def test_signed_path() -> None:
    assert signed_ui_path("e", HEX, "tok") == f"/ext-ui/e/sha256:{HEX}/~t/tok/index.html"
    assert signed_ui_path("e", HEX, "tok", "/docs/a.html") == f"/ext-ui/e/sha256:{HEX}/~t/tok/docs/a.html"
