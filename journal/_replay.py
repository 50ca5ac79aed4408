"""The replayer's decisions that need no engine: does a host call match the recording, and what is the verdict.

The runner's replay mode answers host calls from an entry's ``calls`` in order. Before answering call ``i`` it
asks ``call_divergence``; when the guest has finished it asks ``missing_calls_divergence`` (a guest that stops
calling early diverges too); then ``make_report`` turns the run into a ``ReplayReport``. Arguments are compared
in the journal's tagged JSON after a JSON round trip, so a tuple and a list, or an int and the same int decoded
from an entry, compare as the entry would store them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from ._report import Divergence, ReplayReport, diff_responses

__all__ = ["OK_OUTCOME", "call_divergence", "make_report", "missing_calls_divergence"]

OK_OUTCOME: Final = "ok"
"""The entry's ``outcome`` of an invocation that did not fail (any other outcome is a failure kind)."""


def _as_stored(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def call_divergence(calls: Sequence[Mapping[str, Any]], index: int, fn: str, args: Any) -> Divergence | None:
    """``None`` when the guest's call ``index`` (function ``fn`` with ``args``, tagged JSON) is the recorded one,
    else the divergence: a call past the end of the recording, another function, or other arguments.

    Raises:
        TypeError: ``args`` is not JSON-encodable (the runner's value conversion is wrong).
    """
    actual = {"fn": fn, "args": _as_stored(args)}
    if index >= len(calls):
        return Divergence(index, None, actual, f"called {fn} after the {len(calls)} recorded host calls")
    expected = dict(calls[index])
    recorded_fn = expected.get("fn")
    if recorded_fn != fn:
        return Divergence(index, expected, actual, f"called {fn}, recorded {recorded_fn}")
    if _as_stored(expected.get("args")) != actual["args"]:
        return Divergence(index, expected, actual, f"called {fn} with other arguments than recorded")
    return None


def missing_calls_divergence(calls: Sequence[Mapping[str, Any]], calls_replayed: int) -> Divergence | None:
    """``None`` when the guest made every recorded call, else the first one it did not make."""
    if calls_replayed >= len(calls):
        return None
    expected = dict(calls[calls_replayed])
    return Divergence(
        calls_replayed,
        expected,
        None,
        f"the guest ended after {calls_replayed} host calls; the recording has {len(calls)} "
        f"(next: {expected.get('fn')})",
    )


def make_report(
    entry: Mapping[str, Any],
    replayed_result: Mapping[str, Any],
    *,
    replayed_outcome: str,
    calls_replayed: int,
    divergence: Divergence | None = None,
    content_hash: str | None = None,
) -> ReplayReport:
    """The report of one replay of ``entry`` (an entry document).

    The verdict, first match wins: ``calls_differ`` when there is a divergence; ``new_failure`` when the replay's
    outcome is a failure and the recording's was not; ``response_differs`` when the results differ
    (``diff_responses``); else ``identical``.

    Args:
        entry: the recorded entry document (its ``result``, ``outcome`` and ``entry_id`` are read).
        replayed_result: the replay's ``encode_execute_result`` dict.
        replayed_outcome: the replay's outcome (``"ok"``, ``"trap"``, ``"timeout"``, ...).
        calls_replayed: host calls answered from the journal.
        divergence: from ``call_divergence`` or ``missing_calls_divergence``, if any.
        content_hash: the bundle replayed (``sha256:…``).
    """
    recorded_result = entry.get("result")
    recorded = recorded_result if isinstance(recorded_result, Mapping) else {}
    response_diff = diff_responses(recorded, replayed_result)
    if divergence is not None:
        verdict = "calls_differ"
    elif replayed_outcome != OK_OUTCOME and entry.get("outcome", OK_OUTCOME) == OK_OUTCOME:
        verdict = "new_failure"
    elif response_diff:
        verdict = "response_differs"
    else:
        verdict = "identical"
    entry_id = entry.get("entry_id")
    return ReplayReport(
        verdict=verdict,
        divergence=divergence,
        response_diff=response_diff,
        calls_replayed=calls_replayed,
        entry_id=entry_id if isinstance(entry_id, str) else None,
        content_hash=content_hash,
    )
