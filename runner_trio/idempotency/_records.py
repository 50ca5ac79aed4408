"""The shared record of each key, and the protocol of the stores that hold it (SQLite, Redis, PostgreSQL).

A record is created by ``claim`` before the guest runs (``Claimed`` for the caller, ``Held`` for everyone else)
and becomes ``Done`` when its owner stores the result, or disappears when its owner releases it (the answer
said nothing about the guest: overloaded, bundle errors). Records expire ``ttl`` after they were claimed or
completed. ``lease_until`` (wall clock, seconds) is when a claim without a result counts as abandoned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Claimed", "Done", "Held", "RecordKey", "RecordStore"]

RecordKey = tuple[str, str, str]
"""(tenant, extension, key)."""


@dataclass(frozen=True)
class Claimed:
    """The caller owns the key now and runs the guest."""


@dataclass(frozen=True)
class Held:
    """Another request (``owner``) holds the key and has not recorded a result yet."""

    fingerprint: str
    owner: str
    lease_until: float


@dataclass(frozen=True)
class Done:
    """The key's result, to replay."""

    fingerprint: str
    result: bytes


class RecordStore(Protocol):
    """Where the records live. Every method may raise ``StoreUnavailable``."""

    @property
    def name(self) -> str:
        """What an operator recognises in logs: ``sqlite:///path``, ``redis://host:port/db``."""
        ...

    async def claim(
        self, key: RecordKey, fingerprint: str, owner: str, *, lease_until: float, ttl: float
    ) -> Claimed | Held | Done:
        """Create the record if there is none (atomically); otherwise say what is there."""
        ...

    async def get(self, key: RecordKey) -> Held | Done | None:
        """The record, if any."""
        ...

    async def complete(self, key: RecordKey, owner: str, fingerprint: str, result: bytes, *, ttl: float) -> bool:
        """Store the result if ``owner`` still holds the claim; False when it does not."""
        ...

    async def release(self, key: RecordKey, owner: str) -> None:
        """Delete ``owner``'s claim (a result not worth remembering): the next request runs afresh."""
        ...

    async def aclose(self) -> None: ...
