"""Host-function glue: how a Python function becomes a wasmtime host function, and how WIT values look.

Two kinds of failure stay distinct:

* a *guest-visible error* is the interface's own error variant (``denied``, ``not-allowed``, ``missing``...),
  returned as a value (:class:`Err`): a capability that is not granted or has no backend answers this way;
* a *host bug* (any other exception, trio's ``Cancelled`` included) becomes a trap: :func:`host_function`
  stashes the exception thread-locally and raises ``WasmtimeError``; ``invoke()`` re-raises the stashed one
  after the guest call. wasmtime-py would otherwise hand it back through a module-global variable, where a
  concurrent call on another thread can pick it up.

Values follow wasmtime-py's conventions: records are ``wasmtime.component.Record`` objects with the WIT
(kebab-case) names as attributes (:func:`wit_record`), ``option<T>`` is None or the value, enums are strings,
and results are returned as :class:`Ok` / :class:`Err` so that the case is explicit even where wasmtime-py
could not tell the cases apart by Python type (``result<option<T>, E>``, ``result<string, E>``).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar, cast, final

import trio
from opentelemetry import trace
from wasmtime import WasmtimeError
from wasmtime.component import LinkerInstance, Record, ResourceAny, Variant

from ._callstate import current_call
from ._invocation import Invocation, current_invocation

if TYPE_CHECKING:
    from ._journal import CallJournal

_TRACER = trace.get_tracer("runner_trio.engine")

__all__ = [
    "Err",
    "LinkerInstanceBuilder",
    "Ok",
    "call_backend",
    "host_function",
    "linking_capability",
    "mapping_to_record",
    "naming_instance",
    "record_to_mapping",
    "stash_host_exception",
    "take_host_exception",
    "wit_record",
]

LinkerInstanceBuilder = LinkerInstance
"""What ``Capability.link`` receives: the Linker's root instance (``add_instance(name)`` returns a child)."""

T = TypeVar("T")


@final
class Ok(Variant):
    """The ``ok`` case of a WIT ``result`` (``Ok(None)`` for ``result<_, E>``)."""

    def __init__(self, payload: Any = None) -> None:
        super().__init__("ok", payload)


@final
class Err(Variant):
    """The ``err`` case of a WIT ``result``, e.g. ``Err("denied")``."""

    def __init__(self, payload: Any = None) -> None:
        super().__init__("err", payload)


def wit_record(**fields: Any) -> Record:
    """A ``Record`` whose attributes are the WIT names: ``wit_record(tenant_id="t")`` has ``tenant-id``."""
    record = Record()
    for name, value in fields.items():
        setattr(record, name.replace("_", "-"), value)
    return record


def record_to_mapping(value: Any) -> Any:
    """A lifted WIT value as plain data: records become dicts (kebab-case keys), lists stay lists."""
    if isinstance(value, Record):
        return {name: record_to_mapping(item) for name, item in vars(value).items()}
    if isinstance(value, list):
        return [record_to_mapping(item) for item in value]
    if isinstance(value, tuple):
        return tuple(record_to_mapping(item) for item in value)
    return value


def mapping_to_record(value: Any) -> Any:
    """The reverse of :func:`record_to_mapping`: dicts become records (keys are used as WIT names)."""
    if isinstance(value, Mapping):
        record = Record()
        for name, item in value.items():
            setattr(record, str(name), mapping_to_record(item))
        return record
    if isinstance(value, list):
        return [mapping_to_record(item) for item in value]
    if isinstance(value, tuple):
        return tuple(mapping_to_record(item) for item in value)
    return value


_stash = threading.local()
_linking: ContextVar[str | None] = ContextVar("linking_capability", default=None)


@contextmanager
def linking_capability(name: str) -> Iterator[None]:
    """Host functions wrapped in this block count their calls under capability ``name`` (``calls.<name>``
    of the invocation's usage); ``build_linker`` wraps each capability's ``link`` in it."""
    token = _linking.set(name)
    try:
        yield
    finally:
        _linking.reset(token)


def stash_host_exception(exc: BaseException) -> None:
    """Keep ``exc`` for this thread's current guest call (the first one wins: later ones are consequences)."""
    if getattr(_stash, "exc", None) is None:
        _stash.exc = exc


def take_host_exception() -> BaseException | None:
    """Return and clear the exception a host function raised on this thread, if any."""
    exc: BaseException | None = getattr(_stash, "exc", None)
    _stash.exc = None
    return exc


def host_function(fn: Callable[..., Any], *, with_store: bool = False, name: str | None = None) -> Callable[..., Any]:
    """Wrap ``fn(invocation, *args)`` as a wasmtime-py host function ``(store, *args)``.

    Every exception (``BaseException``: trio's ``Cancelled`` and ``KeyboardInterrupt`` too) is stashed for
    ``invoke()`` and replaced by a ``WasmtimeError``, which traps the guest. A ``WasmtimeError`` raised on
    purpose (a deliberate trap) passes through unchanged.

    A host call made once the invocation's deadline has passed (its ``thread_deadline``, read on this thread's
    clock) has no effect: it traps the guest as interrupted, so the invocation times out, before ``fn`` runs.
    Trio's cancellation and the epoch ticker reach the guest only when the event loop is free; a host call
    that never waits on trio (logging, the clock) would otherwise act after the deadline on a busy loop.

    When the invocation carries a journal (:attr:`Invocation.journal`) the call goes through it: recorded
    under ``name``, or answered from a record without running ``fn`` (replay).

    Args:
        fn: the implementation; it receives the current :class:`Invocation` first.
        with_store: also pass the wasmtime store context, as ``fn(invocation, store, *args)`` (needed to
            convert resource handles).
        name: the stable name a journal records the call under (``alga:extension/storage#get``); the Linker
            sets it when the function is added (:func:`naming_instance`), so capabilities need not.
    """
    label = getattr(fn, "__qualname__", repr(fn))
    capability = _linking.get()  # counted per capability: the invocation's usage calls.<capability>
    span_name = f"host {label}"
    journal_name = name or label

    def call(store: Any, *args: Any) -> Any:
        try:
            invocation = current_invocation()
            if time.monotonic() >= invocation.thread_deadline:
                raise _after_deadline()
            invocation.counters.host_call(capability)
            journal = invocation.journal
            if journal is not None:
                if with_store:
                    return _through_journal_with_store(journal, journal_name, fn, invocation, store, args)
                return journal.call(journal_name, args, lambda: fn(invocation, *args))
            if with_store:
                return fn(invocation, store, *args)
            return fn(invocation, *args)
        except WasmtimeError:
            raise
        except BaseException as exc:
            stash_host_exception(exc)
            raise WasmtimeError(f"host function {label} failed: {type(exc).__name__}") from None

    @functools.wraps(fn)
    def wrapper(store: Any, *args: Any) -> Any:
        # Inside a traced request each host call is a span, child of the guest's (contextvars reach the worker
        # thread); otherwise a context lookup is all it costs.
        if trace.get_current_span().get_span_context().is_valid:
            with _TRACER.start_as_current_span(span_name, attributes={"host.function": label}):
                return call(store, *args)
        return call(store, *args)

    wrapper.__host_function__ = (fn, with_store)  # type: ignore[attr-defined]  # re-wrapped with a name at link
    wrapper.__journal_name__ = journal_name  # type: ignore[attr-defined]
    return wrapper


def _through_journal_with_store(
    journal: CallJournal, name: str, fn: Callable[..., Any], invocation: Invocation, store: Any, args: tuple[Any, ...]
) -> Any:
    """A call handed to ``journal`` whose arguments may hold resource handles: when the journal answers without
    running ``fn`` (a replay), the borrows among them are ended here, as ``fn`` would have (wasmtime traps a call
    that returns with a borrow still held)."""
    ran = False

    def run() -> Any:
        nonlocal ran
        ran = True
        return fn(invocation, store, *args)

    try:
        return journal.call(name, args, run)
    finally:
        if not ran:
            _end_borrows(store, args)


def _end_borrows(store: Any, values: Any) -> None:
    for value in values:
        if isinstance(value, ResourceAny) and not value.owned:
            value.to_host(store)
        elif isinstance(value, list | tuple):
            _end_borrows(store, value)


@final
class _NamingInstance:
    """A Linker instance that names each host function it is given ``<interface>#<function>`` (version-less).

    Capabilities add ``host_function(...)`` wrappers without a name; this gives each its stable journal name
    at link time, so no capability spells its interface twice.
    """

    def __init__(self, inner: LinkerInstance, interface: str | None) -> None:
        self._inner = inner
        self._interface = interface

    def __enter__(self) -> _NamingInstance:
        self._inner.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.__exit__(*exc)

    def add_instance(self, name: str) -> _NamingInstance:
        return _NamingInstance(self._inner.add_instance(name), name.partition("@")[0])

    def add_func(self, name: str, func: Callable[..., Any]) -> None:
        wrapped: tuple[Callable[..., Any], bool] | None = getattr(func, "__host_function__", None)
        if wrapped is not None and self._interface is not None:
            fn, with_store = wrapped
            func = host_function(fn, with_store=with_store, name=f"{self._interface}#{name}")
        self._inner.add_func(name, func)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._inner, attribute)


def naming_instance(root: LinkerInstance) -> LinkerInstanceBuilder:
    """``root`` as a builder whose host functions get their stable journal names (``interface#function``)."""
    return cast(LinkerInstanceBuilder, _NamingInstance(root, None))


def _after_deadline() -> WasmtimeError:
    try:
        state = current_call()
    except LookupError:  # an invocation bound without a guest call: a plain trap
        return WasmtimeError("host call after the invocation's deadline")
    return state.interrupt("host call after the deadline")


def call_backend(invocation: Invocation, afn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run backend coroutine ``afn(*args)`` on the invocation's trio loop and wait for it.

    Called from a host function (the guest's worker thread). The coroutine runs under the cancel scope of the
    task that awaits the guest, so a timeout or a client disconnect cancels it; the resulting ``Cancelled``
    travels through :func:`host_function` back to ``invoke()``.
    """
    try:
        # Raises Cancelled early when the invocation is already being cancelled; RuntimeError off trio threads.
        trio.from_thread.check_cancelled()
    except RuntimeError:
        # Not a trio worker thread (a guest driven synchronously): only the invocation's token reaches trio.
        if invocation.trio_token is None:
            raise
        return trio.from_thread.run(afn, *args, trio_token=invocation.trio_token)
    return trio.from_thread.run(afn, *args)
