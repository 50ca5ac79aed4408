"""The codes on the wire: every one the runner uses is the contract's, and results are read by code."""

from __future__ import annotations

import pytest

import contract
import runner_trio
from contract import ErrorCode, ExecuteResult, FailureKind, Outcome
from runner_trio._metrics import OUTCOMES


def _runner_errors() -> list[type[runner_trio.RunnerError]]:
    return [getattr(runner_trio, name) for name in runner_trio.__all__
            if isinstance(getattr(runner_trio, name), type) and issubclass(getattr(runner_trio, name), Exception)]


def test_every_runner_error_code_is_a_contract_code() -> None:
    errors = _runner_errors()
    assert runner_trio.RunnerError in errors
    assert {ErrorCode(error.code) for error in errors} <= set(ErrorCode)


def test_failure_kinds_and_outcomes_are_the_runners() -> None:
    assert frozenset(FailureKind) == runner_trio.ExecuteFailed.KINDS
    assert tuple(Outcome) == OUTCOMES


def test_runner_error_text_parses_back_to_its_code() -> None:
    for error in (runner_trio.UnknownCapabilities("cap:a, cap:b"), runner_trio.Overloaded(),
                  runner_trio.ExecuteFailed("timeout"), runner_trio.BundleUnavailable("not_found: x")):
        code, _ = contract.split_error(error.wire_error)
        assert code == error.code


@pytest.mark.parametrize(
    ("error", "code", "detail"),
    [
        ("overloaded", ErrorCode.OVERLOADED, None),
        ("execute_failed: timeout", ErrorCode.EXECUTE_FAILED, "timeout"),
        ("unknown_capabilities: cap:mind.read, cap:teleport", ErrorCode.UNKNOWN_CAPABILITIES,
         "cap:mind.read, cap:teleport"),
        ("bundle_fetch_failed: not_found: sha256/ab", ErrorCode.BUNDLE_FETCH_FAILED, "not_found: sha256/ab"),
        ("something_else: timeout", None, "timeout"),
    ],
)
def test_split_error(error: str, code: ErrorCode | None, detail: str | None) -> None:
    assert contract.split_error(error) == (code, detail)


def test_format_error_is_the_runners_form() -> None:
    assert contract.format_error(ErrorCode.OVERLOADED) == "overloaded"
    assert contract.format_error(ErrorCode.EXECUTE_FAILED, "trap") == "execute_failed: trap"
    assert ExecuteResult.failure(409, ErrorCode.IDEMPOTENCY_KEY_REUSED) == ExecuteResult(
        409, {}, None, "idempotency_key_reused")


@pytest.mark.parametrize(
    ("status", "error", "kind", "timed_out"),
    [
        (504, "execute_failed: timeout", FailureKind.TIMEOUT, True),
        (500, "execute_failed: timeout", FailureKind.TIMEOUT, True),  # a runner that keeps 500 for every failure
        (504, "whatever_else", None, True),
        (500, "execute_failed: trap", FailureKind.TRAP, False),
        (500, "execute_failed: memory_limit", FailureKind.MEMORY_LIMIT, False),
        # Read by code, never as prose: "timeout" elsewhere in the text is not a timeout.
        (500, "secret_decrypt_failed: vault_timeout", None, False),
        (500, "execute_failed: trap: timeout in guest", FailureKind.TRAP, False),
        (504, None, None, False),  # the guest's own 504 is an answer, not a runner failure
    ],
)
def test_result_is_read_by_code(status: int, error: str | None, kind: FailureKind | None, timed_out: bool) -> None:
    result = ExecuteResult(status, {}, None, error)
    assert result.failure_kind is kind
    assert result.timed_out is timed_out


def test_a_guest_answer_has_no_code() -> None:
    result = ExecuteResult(200, {"content-type": "text/plain"}, b"ok")
    assert (result.error_code, result.failure_kind, result.timed_out) == (None, None, False)
    assert ExecuteResult(500, {}, None, "execute_failed: trap").error_code is ErrorCode.EXECUTE_FAILED
