"""Per-invocation state that host functions read: who calls, what they may do, where events go, until when.

:class:`Invocation` is what the engine binds to the guest's thread; :class:`HostScope` is the part of it a
capability backend acts for (tenant, extension, install, request, deadline, user), built once per invocation.

``invoke()`` binds one :class:`Invocation` to the worker thread that runs the guest; host functions find it with
:func:`current_invocation`. A thread-local is the reliable way here: wasmtime calls host functions
synchronously on the thread that entered the guest, and wasmtime-py hands host functions a ``StoreContext``
that has no ``data()`` accessor.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol, final

import trio

from contract import LEVELS, Level, Stream

if TYPE_CHECKING:
    from ._journal import CallJournal

__all__ = [
    "EVENT_LEVELS",
    "EventLevel",
    "EventSink",
    "EventStream",
    "HostScope",
    "HostUser",
    "Invocation",
    "InvocationContext",
    "InvocationCounters",
    "ScopeUsage",
    "SecretsProvider",
    "UserInfo",
    "bind_invocation",
    "current_invocation",
]

# The debug stream's levels and streams are the contract's (one spelling for the runner and the gateway).
EventLevel = Level
EventStream = Stream
EVENT_LEVELS: Final[tuple[EventLevel, ...]] = LEVELS
"""Levels of debug events, as the debug stream spells them."""

EventSink = Callable[[EventLevel, EventStream, str], None]
"""``(level, stream, message) -> None``; ``stream`` is ``stdout``, ``stderr`` or ``log``.

Called from worker threads (and, for guest stdout/stderr, possibly from a wasmtime thread): it must be
thread-safe and quick. An exception it raises is counted in ``events_dropped`` and otherwise ignored.
"""

# The logger keeps the name it had before the invocation types moved into the engine (logging configs use it).
logger = logging.getLogger("runner_trio.capabilities")


@dataclass(frozen=True, slots=True)
class InvocationContext:
    """Where an invocation comes from; ``get-context`` shows the guest all of it except hash and config."""

    tenant_id: str
    extension_id: str
    request_id: str | None = None
    install_id: str | None = None
    version_id: str | None = None
    content_hash: str | None = None
    config: Mapping[str, str] = field(default_factory=dict)
    egress: tuple[str, ...] | None = None
    """The hosts the bundle's manifest declares (``egress``); None: it declares none, the runner's allowlist alone
    applies. A declared list narrows the allowlist, never widens it."""
    secrets: tuple[str, ...] | None = None
    """The secret names the bundle's manifest declares (``secrets``); None: it declares none, every secret of the
    install may be read. A declared list is all the guest can read or list."""


@dataclass(frozen=True, slots=True)
class UserInfo:
    """The end user the invocation acts for (``user.get-user`` / ``user-v2.get-user``).

    ``tenant_id`` None means the invocation's tenant.
    """

    user_id: str
    user_email: str = ""
    user_name: str = ""
    user_type: str = ""
    client_name: str = ""
    client_id: str | None = None
    additional_fields: Sequence[tuple[str, str]] = ()
    tenant_id: str | None = None


class SecretsProvider(Protocol):
    """The invocation's secrets (already opened); a failure raises the secrets capability's guest-visible
    error (``HostCallError("missing" | "expired" | ...)``)."""

    async def get(self, key: str) -> str: ...

    async def list_keys(self) -> Sequence[str]: ...


@final
class ScopeUsage:
    """Mutable counters of one invocation, kept on its :class:`HostScope` (e.g. outbound requests made)."""

    __slots__ = ("http_requests",)

    def __init__(self) -> None:
        self.http_requests = 0

    def __repr__(self) -> str:
        return f"ScopeUsage(http_requests={self.http_requests})"


@dataclass(frozen=True, slots=True)
class HostUser:
    """The end user an invocation acts for, when the gateway sent one (forwarded for platform RBAC)."""

    user_id: str
    user_type: str
    user_email: str | None = None


@dataclass(frozen=True, slots=True)
class HostScope:
    """Who a host call acts for, and until when. Build one per invocation and pass the same object to every call.

    Attributes:
        tenant_id: the invocation's tenant.
        extension_id: the invocation's extension.
        install_id: the install, when the gateway sent one.
        request_id: the request id, forwarded to upstream services for correlation.
        deadline: the invocation's deadline on the ``trio.current_time()`` clock; no host call outlives it.
        version_id: the extension version, when known.
        user: the end user, when known.
        usage: per-invocation counters (request caps); shared by every call made with this scope.
        egress: the hosts the bundle declares (see :attr:`InvocationContext.egress`).
    """

    tenant_id: str
    extension_id: str
    install_id: str | None = None
    request_id: str | None = None
    deadline: float = math.inf
    version_id: str | None = None
    user: HostUser | None = None
    usage: ScopeUsage = field(default_factory=ScopeUsage, compare=False, repr=False)
    egress: tuple[str, ...] | None = None

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once it has passed). Needs a running trio loop."""
        return self.deadline - trio.current_time()

    def bounded(self, timeout: float) -> float:
        """``timeout`` cut to what is left of the invocation, never below zero."""
        return max(0.0, min(timeout, self.remaining()))


@final
class InvocationCounters:
    """Mutable, thread-safe counters of one invocation (host calls, denials, output volume, dropped events,
    and what it used: guest CPU and wall time, egress, storage, host calls per capability)."""

    __slots__ = (
        "_calls",
        "_lock",
        "_values",
    )

    NAMES: Final = (
        "host_calls",
        "host_errors",
        "denied_calls",
        "log_events",
        "log_events_dropped",
        "stdout_bytes",
        "stderr_bytes",
        "output_bytes_dropped",
        "events_dropped",
        # Usage (contract.USAGE_FIELDS are computed from these, see runner_trio._usage).
        "guest_runs",
        "guest_cpu_us",
        "guest_wall_us",
        "egress_requests",
        "egress_bytes",
        "storage_ops",
        "storage_bytes",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(self.NAMES, 0)
        self._calls: dict[str, int] = {}

    def host_call(self, capability: str | None) -> None:
        """Count one host call, and one call of ``capability`` (the interface it belongs to) when known."""
        with self._lock:
            self._values["host_calls"] += 1
            if capability is not None:
                self._calls[capability] = self._calls.get(capability, 0) + 1

    def add_pair(self, first: str, first_amount: int, second: str, second_amount: int) -> None:
        """Add to two counters at once (one lock): e.g. ``egress_requests`` and ``egress_bytes``."""
        with self._lock:
            self._values[first] += first_amount
            self._values[second] += second_amount

    def calls(self) -> dict[str, int]:
        """Host calls per capability name (``http``, ``storage``...), for the ones called at least once."""
        with self._lock:
            return dict(self._calls)

    def add(self, name: str, amount: int = 1) -> int:
        """Add ``amount`` to counter ``name`` and return the new value."""
        with self._lock:
            value = self._values[name] + amount
            self._values[name] = value
            return value

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._values[name]

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter."""
        with self._lock:
            return dict(self._values)

    def __repr__(self) -> str:
        return f"InvocationCounters({self.snapshot()})"


@dataclass(frozen=True, eq=False)
class Invocation:
    """Everything host functions need about one guest invocation.

    Build it per request; ``invoke()`` fills ``deadline``, ``thread_deadline`` and ``trio_token`` (it
    returns a copy, so one object may serve several invocations in tests).

    Attributes:
        context: tenant, extension, install, request and version ids, content hash, install config.
        grants: the capabilities granted (``cap:http.fetch`` ...); see each capability's ``grant``.
        user: the end user, when the gateway sent one.
        secrets: the invocation's secrets provider, or None when there are none.
        deadline: end of the invocation on the ``trio.current_time()`` clock.
        thread_deadline: the same instant on the ``time.monotonic()`` clock (usable from worker threads).
        trio_token: the trio run the invocation belongs to.
        events: sink for debug events (guest logs, stdout/stderr lines); None drops them.
        counters: per-invocation counters.
        journal: records every host call (and output line) of the invocation, or answers them from a record
            (replay); None (the default) costs one attribute read per host call.
    """

    context: InvocationContext
    grants: frozenset[str] = frozenset()
    user: UserInfo | None = None
    secrets: SecretsProvider | None = None
    deadline: float = math.inf
    thread_deadline: float = math.inf
    trio_token: trio.lowlevel.TrioToken | None = None
    events: EventSink | None = None
    counters: InvocationCounters = field(default_factory=InvocationCounters)
    journal: CallJournal | None = None

    def allows(self, grant: str | None) -> bool:
        """Whether a capability guarded by ``grant`` (None: always granted) may be used."""
        return grant is None or grant in self.grants

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once passed); callable from any thread."""
        return self.thread_deadline - time.monotonic()

    def emit(self, level: EventLevel, stream: EventStream, message: str) -> None:
        """Send one debug event to the sink (and the journal, if any); never raises."""
        if self.journal is not None:
            self.journal.output(level, stream, message)
        if self.events is None:
            return
        try:
            self.events(level, stream, message)
        except Exception:
            if self.counters.add("events_dropped") == 1:
                logger.exception("debug event sink failed; further failures of this invocation are counted")

    @functools.cached_property
    def host_scope(self) -> HostScope:
        """The :class:`HostScope` backends act for (one per invocation, shared by every host call)."""
        user = None
        if self.user is not None:
            user = HostUser(
                user_id=self.user.user_id,
                user_type=self.user.user_type,
                user_email=self.user.user_email or None,
            )
        return HostScope(
            tenant_id=self.context.tenant_id,
            extension_id=self.context.extension_id,
            install_id=self.context.install_id,
            request_id=self.context.request_id,
            deadline=self.deadline,
            version_id=self.context.version_id,
            user=user,
            egress=self.context.egress,
        )


_bound = threading.local()


@contextmanager
def bind_invocation(invocation: Invocation) -> Iterator[Invocation]:
    """Make ``invocation`` the current one of this thread for the duration of the block."""
    previous = getattr(_bound, "invocation", None)
    _bound.invocation = invocation
    try:
        yield invocation
    finally:
        _bound.invocation = previous


def current_invocation() -> Invocation:
    """The invocation bound to this thread.

    Raises:
        LookupError: no invocation is bound (a host function called outside ``invoke()``).
    """
    invocation: Invocation | None = getattr(_bound, "invocation", None)
    if invocation is None:
        raise LookupError("no invocation is bound to this thread")
    return invocation
