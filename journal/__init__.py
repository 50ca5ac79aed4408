"""The invocation journal: sealed records of invocations (every host call, clock and random value, the
response), written off the request path to the bundle store's backend, read back for replay.

Public API::

    JOURNAL_FORMAT, new_entry_id(), entry_key(tenant, extension, entry_id, *, prefix="journal")
    JournalKeyring.parse("kid1:<b64>,kid0:<b64>"), JournalKeyring.generate()
    seal_entry(doc, keyring, *, aad) -> bytes; open_entry(data, keyring, *, aad) -> dict
    should_record(policy, *, failed, rand=random.random) -> bool
    redact_secrets(value, {name: value}) -> value with every secret occurrence as «secret:NAME»
    JournalWriter(store, keyring, ...): run(task_status=), submit(...) -> bool, statistics(), flush(), aclose()
    JournalReader(store, keyring, ...): read(...) -> dict, delete(...)
    diff_responses(expected, actual) -> list[str]; ReplayReport / Divergence (to_json, from_json)
    call_divergence(calls, i, fn, args), missing_calls_divergence(calls, n), make_report(entry, result, ...)

The entry document's format and the policies are described in docs/journal.md. This package never imports a
service package, quart or wasmtime: converting guest values to the journal's tagged JSON is the runner's.
"""

from ._errors import (
    JournalCorrupt,
    JournalError,
    JournalFull,
    JournalKeyError,
    JournalNotFound,
    JournalStoreError,
    ReportInvalid,
)
from ._ids import DEFAULT_PREFIX, JOURNAL_FORMAT, entry_key, new_entry_id
from ._keys import KEY_BYTES, JournalKey, JournalKeyring
from ._policy import JournalPolicyLike, should_record
from ._reader import JournalReader
from ._redact import SECRET_MARKER, redact_secrets, secret_marker
from ._replay import OK_OUTCOME, call_divergence, make_report, missing_calls_divergence
from ._report import IGNORED_RESULT_FIELDS, VERDICTS, Divergence, ReplayReport, diff_responses
from ._seal import DEFAULT_MAX_DOCUMENT_BYTES, open_entry, seal_entry
from ._writer import (
    DEFAULT_MAX_CONCURRENT_WRITES,
    DEFAULT_MAX_ENTRY_BYTES,
    DEFAULT_MAX_QUEUE,
    JournalWriter,
    WriterStatistics,
)

__all__ = [
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
