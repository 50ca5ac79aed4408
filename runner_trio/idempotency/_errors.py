"""The idempotency errors: why a keyed request did not run (or did not run again).

```
IdempotencyError
├── KeyReused         the key is live for a request with another fingerprint        -> 409 idempotency_key_reused
├── KeyInProgress     its first request is still running past this one's deadline   -> 409 idempotency_key_in_progress
├── KeyAbandoned      its runner stopped before recording a result (never re-run)   -> 409 idempotency_key_abandoned
└── StoreUnavailable  the shared store cannot be reached; nothing ran               -> 503 idempotency_store_unavailable
```
"""

from __future__ import annotations

from typing import ClassVar

from contract import ErrorCode

__all__ = ["IdempotencyError", "KeyAbandoned", "KeyInProgress", "KeyReused", "StoreUnavailable"]


class IdempotencyError(Exception):
    """Base of the tree; ``code`` and ``status`` are what ``/v1/execute`` answers."""

    code: ClassVar[ErrorCode]
    status: ClassVar[int] = 409


class KeyReused(IdempotencyError):
    """The key was already used for a request with a different fingerprint."""

    code = ErrorCode.IDEMPOTENCY_KEY_REUSED


class KeyInProgress(IdempotencyError):
    """The key's first request is still running (here or on another runner) when this one's deadline passed."""

    code = ErrorCode.IDEMPOTENCY_KEY_IN_PROGRESS


class KeyAbandoned(IdempotencyError):
    """The key's claim outlived its lease without a result: its runner died or lost the store mid-run.

    Whether the guest ran is unknown, so it is never run again under this key (at most once); the client runs
    it again with a new key once it has checked the guest's effects.
    """

    code = ErrorCode.IDEMPOTENCY_KEY_ABANDONED


class StoreUnavailable(IdempotencyError):
    """The shared record store (Redis, the SQLite file) failed; the guest was not run."""

    code = ErrorCode.IDEMPOTENCY_STORE_UNAVAILABLE
    status = 503
