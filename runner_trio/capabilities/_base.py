"""The capability protocol: one unit per host interface, linked once, answering per invocation.

Modelled on Spin's "factors": each module of this package defines one interface of the
``alga:extension/runner`` world (``name``), the grant that enables it (``grant``), and defines its host
functions on the shared Linker once (``link``). Host functions read the per-invocation state from
:func:`current_invocation`.

Two kinds of failure stay distinct:

* a *guest-visible error* is the interface's own error variant (``denied``, ``not-allowed``, ``missing``...),
  returned as a value: a capability that is not granted or has no backend answers this way, never with a trap;
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
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Protocol, TypeVar, final

import trio
from wasmtime import WasmtimeError
from wasmtime.component import LinkerInstance, Record, Variant

from ._host_errors import HostCallError
from ._invocation import Invocation, current_invocation

__all__ = [
    "PACKAGE",
    "Capability",
    "Err",
    "LinkerInstanceBuilder",
    "Ok",
    "call_backend",
    "denied",
    "guest_error",
    "host_function",
    "interface_name",
    "mapping_to_record",
    "record_to_mapping",
    "stash_host_exception",
    "take_host_exception",
    "wit_record",
]

PACKAGE: Final = "alga:extension"
"""The WIT package (no version): interfaces are linked as ``alga:extension/<name>``."""

LinkerInstanceBuilder = LinkerInstance
"""What ``link`` receives: the Linker's root instance (``add_instance(name)`` returns a child to define on)."""

_log = logging.getLogger("runner_trio.capabilities")

T = TypeVar("T")


class Capability(Protocol):
    """One interface of the ``alga:extension/runner`` world.

    Attributes:
        name: the interface it implements, e.g. ``"http"`` (linked as ``alga:extension/http``).
        grant: the capability that enables it, e.g. ``"cap:http.fetch"``; None means always granted.
    """

    name: str
    grant: str | None

    def link(self, root: LinkerInstanceBuilder) -> None:
        """Define the interface's host functions on the Linker (called once, when the Linker is built)."""
        ...


def interface_name(name: str) -> str:
    """``"http"`` -> ``"alga:extension/http"``."""
    return f"{PACKAGE}/{name}"


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


def stash_host_exception(exc: BaseException) -> None:
    """Keep ``exc`` for this thread's current guest call (the first one wins: later ones are consequences)."""
    if getattr(_stash, "exc", None) is None:
        _stash.exc = exc


def take_host_exception() -> BaseException | None:
    """Return and clear the exception a host function raised on this thread, if any."""
    exc: BaseException | None = getattr(_stash, "exc", None)
    _stash.exc = None
    return exc


def host_function(fn: Callable[..., Any], *, with_store: bool = False) -> Callable[..., Any]:
    """Wrap ``fn(invocation, *args)`` as a wasmtime-py host function ``(store, *args)``.

    Every exception (``BaseException``: trio's ``Cancelled`` and ``KeyboardInterrupt`` too) is stashed for
    ``invoke()`` and replaced by a ``WasmtimeError``, which traps the guest. A ``WasmtimeError`` raised on
    purpose (a deliberate trap) passes through unchanged.

    Args:
        fn: the implementation; it receives the current :class:`Invocation` first.
        with_store: also pass the wasmtime store context, as ``fn(invocation, store, *args)`` (needed to
            convert resource handles).
    """
    label = getattr(fn, "__qualname__", repr(fn))

    @functools.wraps(fn)
    def wrapper(store: Any, *args: Any) -> Any:
        try:
            invocation = current_invocation()
            invocation.counters.add("host_calls")
            if with_store:
                return fn(invocation, store, *args)
            return fn(invocation, *args)
        except WasmtimeError:
            raise
        except BaseException as exc:
            stash_host_exception(exc)
            raise WasmtimeError(f"host function {label} failed: {type(exc).__name__}") from None

    return wrapper


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


def guest_error(invocation: Invocation, exc: HostCallError, cases: frozenset[str]) -> Err:
    """A backend's :class:`HostCallError` as the WIT ``err`` case of an enum with ``cases`` (and counted).

    A variant the interface does not have becomes ``internal`` (every ``alga:extension`` error enum that a
    backend can produce has it) rather than a conversion failure, which would trap the guest.
    """
    invocation.counters.add("host_errors")
    variant = exc.variant if exc.variant in cases else "internal"
    if variant == "internal":
        # The guest only sees "internal"; the operator needs the why (backend details never hold secret values).
        ctx = invocation.context
        _log.warning(
            "host call failed internally tenant=%s extension=%s request=%s: %s",
            ctx.tenant_id, ctx.extension_id, ctx.request_id, exc.detail or exc.variant,
        )
    return Err(variant)


def denied(invocation: Invocation, payload: T) -> T:
    """Count a refused call and return ``payload`` (the interface's denial value)."""
    invocation.counters.add("denied_calls")
    return payload
