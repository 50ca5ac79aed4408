"""Which invocations are recorded: the decision a runner takes once the invocation has finished."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol

__all__ = ["JournalPolicyLike", "should_record"]


class JournalPolicyLike(Protocol):
    """What ``should_record`` reads of a policy: ``contract.JournalPolicy`` has this shape (the journal sits in
    the same layer as ``contract``, so it does not import it)."""

    @property
    def mode(self) -> str: ...

    @property
    def rate(self) -> float: ...


def should_record(policy: JournalPolicyLike | None, *, failed: bool, rand: Callable[[], float] = random.random) -> bool:
    """Whether to record an invocation under ``policy`` (``None``: the caller asked for no journal).

    ``off`` never records; ``errors`` records failures; ``all`` records everything; ``sample`` records every
    failure and a ``rate`` share of the rest (``rand() < rate``; ``rand`` is drawn only then). ``failed`` is the
    runner's view: an error was set or the status is 500 or above.

    Raises:
        ValueError: the policy's mode is none of the four.
    """
    if policy is None:
        return False
    mode = policy.mode
    if mode == "off":
        return False
    if mode == "all":
        return True
    if mode == "errors":
        return failed
    if mode == "sample":
        return failed or rand() < policy.rate
    raise ValueError(f"unknown journal policy mode {mode!r}")
