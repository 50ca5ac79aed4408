"""Replay a journal entry: run its recorded request again with every host call answered from the record.

The replay runs the recorded request (context, http, limits, user) with the recorded grants, against the recorded
bundle or another one (an upgrade check). Nothing real is touched: host calls are answered from the entry in order
(:class:`~runner_trio.engine.CallReplayer`), so there is no egress, no storage write, no secret opened (a secret
reads as ``«secret:NAME»``, as the record holds it), and waits return at once. The report says ``identical``,
``calls_differ`` (the first call that differs, with what was expected and what the guest did), ``new_failure``
(the recorded invocation succeeded, this one failed) or ``response_differs``, with the response diff.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import trio

import journal
from contract import ErrorCode, ExecuteResult, FailureKind, encode_execute_result

from ._errors import BundleUnavailable, RunnerError
from ._execute import JournalTap, Timing, outcome_of, run_invocation
from ._runtime import Runtime
from ._wire import ExecuteRequest, parse_execute_request
from .engine import CallReplayer, InvocationCounters, ReplayDivergence

__all__ = ["ReplayInputError", "replay_entry"]

log = logging.getLogger("runner_trio.replay")

class ReplayInputError(Exception):
    """The entry cannot be replayed: its request does not decode (422), or the bundle asked for cannot be loaded
    (502 ``bundle_fetch_failed: …``, as ``/v1/execute`` says it). ``code`` is the wire error."""

    def __init__(self, code: str, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def recorded_request(runtime: Runtime, doc: Mapping[str, Any], content_hash: str | None) -> ExecuteRequest:
    """The entry's request, against ``content_hash`` (bare hex) when given, never recorded again.

    Raises:
        ReplayInputError: the entry's request does not decode.
    """
    try:
        request = parse_execute_request(doc["request"], max_body_bytes=runtime.settings.max_request_body_bytes)
    except (RunnerError, KeyError, TypeError) as exc:
        raise ReplayInputError("journal_entry_unreadable", f"the entry's request does not decode: {exc}") from None
    context = request.context
    if content_hash is not None:
        context = dataclasses.replace(context, content_hash=content_hash)
    return dataclasses.replace(request, context=context, journal=None, secret_envelope=None)


async def replay_entry(
    runtime: Runtime, doc: Mapping[str, Any], *, content_hash: str | None = None
) -> journal.ReplayReport:
    """Replay entry ``doc`` (decrypted) against its own bundle, or ``content_hash`` (bare hex) when given.

    Raises:
        ReplayInputError: the entry is not one this runner can replay.
    """
    request = recorded_request(runtime, doc, content_hash)
    calls = doc.get("calls")
    grants = doc.get("grants")
    if not isinstance(calls, list) or not isinstance(grants, list):
        raise ReplayInputError("journal_entry_unreadable", "the entry has no calls or grants")
    replayer = CallReplayer(calls)
    tap = JournalTap(replayer=replayer, grants=frozenset(str(grant) for grant in grants))
    divergence: ReplayDivergence | None = None
    outcome = journal.OK_OUTCOME
    try:
        result = await run_invocation(runtime, request, _drop, trio.current_time(), Timing(), InvocationCounters(), tap)
    except ReplayDivergence as exc:
        divergence, outcome = exc, "trap"  # the guest was stopped at the call that differs
        result = ExecuteResult.failure(500, ErrorCode.EXECUTE_FAILED, FailureKind.TRAP)
    except BundleUnavailable as exc:
        # No verdict about a guest that never ran: a hash that is not in the store, a bundle that does not compile.
        raise ReplayInputError(exc.wire_error, str(exc), status=exc.status_code) from None
    except RunnerError as exc:
        outcome = outcome_of(exc)
        result = ExecuteResult(status=exc.status_code, headers={}, body=None, error=exc.wire_error)
    divergence = divergence or replayer.finish()
    report = journal.make_report(
        doc,
        encode_execute_result(result),
        replayed_outcome=outcome,
        calls_replayed=replayer.calls_replayed,
        divergence=None if divergence is None else journal.Divergence(
            divergence.index, divergence.expected, divergence.actual, divergence.reason
        ),
        content_hash=f"sha256:{request.context.content_hash}",
    )
    verdict = report.verdict
    log.info("replayed entry=%s tenant=%s extension=%s against=%s verdict=%s calls=%d",
             doc.get("entry_id"), request.context.tenant_id, request.context.extension_id,
             request.context.content_hash, verdict, replayer.calls_replayed)
    return report


def _drop(_level: str, _stream: str, _message: str) -> None:
    """A replay's runner-side events go nowhere (the recorded invocation published them)."""
