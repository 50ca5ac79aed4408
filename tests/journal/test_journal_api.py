"""The public surface of the journal package, its ids and its object keys."""

from __future__ import annotations

import pytest

import journal
from contract import is_safe_id
from journal import JOURNAL_FORMAT, entry_key, new_entry_id


def test_exported_names_are_pinned() -> None:
    assert sorted(journal.__all__) == sorted(
        [
            "DEFAULT_MAX_CONCURRENT_WRITES",
            "DEFAULT_MAX_DOCUMENT_BYTES",
            "DEFAULT_MAX_ENTRY_BYTES",
            "DEFAULT_MAX_QUEUE",
            "DEFAULT_PREFIX",
            "IGNORED_RESULT_FIELDS",
            "JOURNAL_FORMAT",
            "KEY_BYTES",
            "OK_OUTCOME",
            "SECRET_MARKER",
            "VERDICTS",
            "Divergence",
            "JournalCorrupt",
            "JournalError",
            "JournalFull",
            "JournalKey",
            "JournalKeyError",
            "JournalKeyring",
            "JournalNotFound",
            "JournalPolicyLike",
            "JournalReader",
            "JournalStoreError",
            "JournalWriter",
            "ReplayReport",
            "ReportInvalid",
            "WriterStatistics",
            "call_divergence",
            "diff_responses",
            "entry_key",
            "make_report",
            "missing_calls_divergence",
            "new_entry_id",
            "open_entry",
            "redact_secrets",
            "seal_entry",
            "secret_marker",
            "should_record",
        ]
    )
    for name in journal.__all__:
        assert getattr(journal, name) is not None


def test_error_tree_and_codes() -> None:
    leaves = [
        journal.JournalKeyError,
        journal.JournalCorrupt,
        journal.JournalNotFound,
        journal.JournalFull,
        journal.JournalStoreError,
        journal.ReportInvalid,
    ]
    assert all(issubclass(leaf, journal.JournalError) for leaf in leaves)
    assert len({leaf.code for leaf in leaves}) == len(leaves)
    assert journal.JournalNotFound.code == "journal_entry_not_found"


def test_format_name() -> None:
    assert JOURNAL_FORMAT == "alga-journal/1"


def test_entry_ids_are_fresh_safe_hex() -> None:
    ids = {new_entry_id() for _ in range(100)}
    assert len(ids) == 100
    for entry_id in ids:
        assert len(entry_id) == 32
        assert entry_id == entry_id.lower()
        int(entry_id, 16)
        assert is_safe_id(entry_id)


def test_entry_key_layout() -> None:
    entry_id = "ab" * 16
    assert entry_key("acme", "billing", entry_id) == f"journal/v1/acme/billing/{entry_id}.jrnl"
    assert entry_key("acme", "billing", entry_id, prefix="j/x") == f"j/x/v1/acme/billing/{entry_id}.jrnl"


def test_entry_key_escapes_reference_ids_one_to_one() -> None:
    # The execute contract allows ":" and "@" in ids; keys do not, so they are escaped with "~" (never in ids).
    assert entry_key("acme:eu", "ext@vendor", "e1") == "journal/v1/acme~3Aeu/ext~40vendor/e1.jrnl"
    with pytest.raises(ValueError, match="tenant id"):
        entry_key("acme~3Aeu", "x", "e1")


@pytest.mark.parametrize(
    ("tenant", "extension", "entry_id"),
    [("../etc", "x", "e"), ("a/b", "x", "e"), ("", "x", "e"), ("a", ".hidden", "e"), ("a", "x", "e/../f")],
)
def test_entry_key_refuses_what_is_not_an_id(tenant: str, extension: str, entry_id: str) -> None:
    with pytest.raises(ValueError, match="is not an id"):
        entry_key(tenant, extension, entry_id)


def test_entry_key_refuses_an_unsafe_prefix() -> None:
    with pytest.raises(ValueError, match="object key"):
        entry_key("a", "b", "c", prefix="../up")
