"""Journal keyrings: the setting's grammar, with errors that say what is wrong and never show key bytes."""

from __future__ import annotations

import base64

import pytest

from journal import KEY_BYTES, JournalKey, JournalKeyError, JournalKeyring

KEY_A = base64.b64encode(b"a" * 32).decode()
KEY_B = base64.b64encode(b"b" * 32).decode()


def test_parse_two_keys_first_seals() -> None:
    ring = JournalKeyring.parse(f" new:{KEY_A} , old:{KEY_B} ")
    assert ring.key_ids == ("new", "old")
    assert ring.primary.key_id == "new"
    assert ring.primary.secret == b"a" * 32
    assert ring.get("old").secret == b"b" * 32
    assert len(ring) == 2


def test_generate_parses_back_and_is_random() -> None:
    one, two = JournalKeyring.generate(), JournalKeyring.generate()
    assert one != two
    ring = JournalKeyring.parse(f"{one},{two}")
    assert len(ring.primary.secret) == KEY_BYTES
    assert JournalKeyring.parse(JournalKeyring.generate("k2026")).key_ids == ("k2026",)


def test_repr_never_shows_key_bytes() -> None:
    ring = JournalKeyring.parse(f"kid1:{KEY_A}")
    assert KEY_A not in repr(ring)
    assert KEY_A not in repr(ring.primary)
    assert "kid1" in repr(ring)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "journal keys are empty"),
        ("   ", "journal keys are empty"),
        (KEY_A, r"journal key #1 must be 'kid:<base64 of 32 bytes>'"),
        (f"kid1:{KEY_A},", r"journal key #2 must be 'kid:"),
        (f":{KEY_A}", "journal key #1 must be"),
        ("kid1:", "journal key #1 must be"),
        (f"bad id:{KEY_A}", r"journal key #1: the id 'bad id' must be 1-32 characters"),
        (f"{'k' * 33}:{KEY_A}", "must be 1-32 characters"),
        ("kid1:not base64!", r"journal key #1 \(kid1\) is not valid base64"),
        (f"kid1:{base64.b64encode(b'short').decode()}", r"journal key #1 \(kid1\) is 5 bytes, expected 32"),
        (f"kid1:{KEY_A},kid1:{KEY_B}", "journal key id 'kid1' appears twice"),
    ],
)
def test_parse_errors_are_clear(text: str, message: str) -> None:
    with pytest.raises(JournalKeyError, match=message) as info:
        JournalKeyring.parse(text)
    assert KEY_A not in str(info.value)
    assert KEY_B not in str(info.value)
    assert info.value.code == "journal_key_invalid"


def test_unknown_key_id_names_the_held_ones() -> None:
    ring = JournalKeyring.parse(f"kid1:{KEY_A}")
    with pytest.raises(JournalKeyError, match=r"no journal key with id 'gone' \(this keyring holds kid1\)"):
        ring.get("gone")


def test_keys_are_checked_when_built_directly() -> None:
    with pytest.raises(JournalKeyError, match="must be 32 bytes"):
        JournalKey("k", b"x" * 16)
    with pytest.raises(JournalKeyError, match="1-32 characters"):
        JournalKey("a:b", b"x" * 32)
    with pytest.raises(JournalKeyError, match="at least one key"):
        JournalKeyring([])
