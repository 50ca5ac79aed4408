"""Errors of the invocation journal.

The tree::

    JournalError                 anything wrong with a journal key, entry, store or replay report
    ├── JournalKeyError          the key setting is malformed, or an entry names a key id this keyring lacks
    ├── JournalCorrupt           not a journal entry: bad header, authentication failed (wrong key, tampered
    │                            bytes, a blob moved under another object key), bad compression or JSON
    ├── JournalNotFound          no entry under that tenant, extension and id
    ├── JournalFull              the writer refused an entry: its queue is full, it is closed, or the entry
    │                            is over the size cap (``JournalWriter.submit`` reports this as ``False``)
    ├── JournalStoreError        the store under the journal failed (unreachable, refused, I/O error)
    └── ReportInvalid            a replay report's JSON does not have the documented shape

Each error has a stable ``code`` for logs and wire errors. Messages never contain key material or entry
contents.
"""

from __future__ import annotations

__all__ = [
    "JournalCorrupt",
    "JournalError",
    "JournalFull",
    "JournalKeyError",
    "JournalNotFound",
    "JournalStoreError",
    "ReportInvalid",
]


class JournalError(Exception):
    """Base of every journal error."""

    code: str = "journal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JournalKeyError(JournalError):
    """A journal key setting is malformed, or an entry was sealed with a key id this keyring does not hold."""

    code = "journal_key_invalid"


class JournalCorrupt(JournalError):
    """The bytes are not a journal entry this keyring can open under this object key."""

    code = "journal_entry_corrupt"


class JournalNotFound(JournalError):
    """No journal entry is stored under the requested tenant, extension and id."""

    code = "journal_entry_not_found"


class JournalFull(JournalError):
    """The writer cannot take the entry: its queue is full, it is closed, or the entry is over the size cap."""

    code = "journal_full"


class JournalStoreError(JournalError):
    """The object store holding the journal failed."""

    code = "journal_store_unavailable"


class ReportInvalid(JournalError):
    """A replay report (``ReplayReport.from_json``) is not shaped as documented."""

    code = "replay_report_invalid"
