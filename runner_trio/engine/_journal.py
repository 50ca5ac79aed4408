"""The call journal: every host call of one invocation recorded in order, or answered from such a record.

Every effect a guest can have, and every value it can observe from outside (clocks, randomness, secrets,
storage, HTTP), passes through :func:`~._host.host_function`. When the invocation carries a journal
(:attr:`Invocation.journal`), that wrapper hands each call to it:

* a :class:`CallRecorder` runs the real function and keeps ``{"i", "fn", "args", "result", "at_us",
  "dur_us"}`` with the values in the tagged JSON of :func:`encode_value`;
* a :class:`CallReplayer` compares the guest's call with the next recorded one and answers the recorded
  result without running anything; a call that differs (function or arguments), or one more than was
  recorded, stops the guest with :class:`ReplayDivergence` (a trap for the guest; ``invoke()`` re-raises it).

Functions that create resources (``subscribe-*``, :data:`LIVE_FUNCTIONS`) run in both modes: a handle cannot be
rebuilt from a record. Waiting on them (``block``, ``poll``, ``ready``) is answered from the record, so a replay
never sleeps.

Secret values never reach the record: :meth:`CallRecorder.document_parts` replaces every string or byte string
equal to or containing a value read through a *secret function* with ``«secret:NAME»``, and the replay answers
that placeholder (it is what the record holds).
"""

from __future__ import annotations

import base64
import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, final

import wasmtime
from wasmtime.component import Record, ResourceAny, ResourceHost, ResourceType, Variant

from ._callstate import POLLABLE_TYPE
from ._host import Err, Ok

__all__ = [
    "DEFAULT_MAX_CALLS",
    "DEFAULT_MAX_OUTPUT_LINES",
    "LIVE_FUNCTIONS",
    "CallJournal",
    "CallRecorder",
    "CallReplayer",
    "ReplayDivergence",
    "decode_value",
    "encode_value",
    "redact",
    "secret_placeholder",
]

DEFAULT_MAX_CALLS: Final = 10_000
"""Calls kept per invocation; later ones are counted in ``dropped_calls`` (such an entry cannot replay fully)."""
DEFAULT_MAX_OUTPUT_LINES: Final = 2_000
"""Output lines (stdout, stderr, log) kept per entry."""

LIVE_FUNCTIONS: Final = frozenset({
    "wasi:clocks/monotonic-clock#subscribe-instant",
    "wasi:clocks/monotonic-clock#subscribe-duration",
    "wasi:io/streams#[method]input-stream.subscribe",
    "wasi:io/streams#[method]output-stream.subscribe",
    "wasi:sockets/tcp#[method]tcp-socket.subscribe",
    "wasi:sockets/udp#[method]udp-socket.subscribe",
    "wasi:sockets/udp#[method]incoming-datagram-stream.subscribe",
    "wasi:sockets/udp#[method]outgoing-datagram-stream.subscribe",
    "wasi:sockets/ip-name-lookup#[method]resolve-address-stream.subscribe",
})
"""Functions that create a resource: run for real in replay too (still compared with the record)."""

_TRAP: Final = "$trap"


def secret_placeholder(name: str) -> str:
    """What a secret's value reads as in a record, and what a replay answers: ``«secret:NAME»``."""
    return f"«secret:{name}»"


# -- values --------------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode_value(value: Any) -> Any:
    """A WIT value (as wasmtime-py lifts or our host functions return it) as tagged JSON.

    Scalars and lists as themselves; ``bytes`` ``{"$b": base64}``; tuples ``{"$t": [...]}``; records
    ``{"$r": {kebab-name: value}}``; variants and results ``{"$v": case, "p": payload}``; resources
    ``{"$res": type}``.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$b": _b64(bytes(value))}
    if isinstance(value, list):
        return [encode_value(item) for item in value]
    if isinstance(value, tuple):
        return {"$t": [encode_value(item) for item in value]}
    if isinstance(value, Variant):
        return {"$v": value.tag, "p": encode_value(value.payload)}
    if isinstance(value, Record):
        return {"$r": {name: encode_value(item) for name, item in vars(value).items()}}
    if isinstance(value, ResourceHost):
        return {"$res": "pollable" if value.type == POLLABLE_TYPE else "resource"}
    if isinstance(value, ResourceAny):
        return {"$res": _resource_name(value.type)}
    if isinstance(value, set | frozenset):  # WIT flags
        return sorted(str(item) for item in value)
    return {"$repr": type(value).__name__}


def _resource_name(resource_type: Any) -> str:
    """``pollable`` for this runner's pollables (the one host resource it hands out), else ``resource``."""
    try:
        if resource_type == _pollable_type():
            return "pollable"
    except Exception:  # a name for the record only: it never fails the call
        return "resource"
    return "resource"


@functools.cache
def _pollable_type() -> ResourceType:
    """The pollables' resource type, built once."""
    return ResourceType.host(POLLABLE_TYPE)


def decode_value(value: Any) -> Any:
    """The reverse of :func:`encode_value`, for the answers of a replay (``ok``/``err`` become Ok/Err variants).

    Raises:
        ValueError: a resource handle (these are never answered from a record) or an unknown tag.
    """
    if isinstance(value, list):
        return [decode_value(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "$b" in value:
        return base64.b64decode(value["$b"])
    if "$t" in value:
        return tuple(decode_value(item) for item in value["$t"])
    if "$r" in value:
        record = Record()
        for name, item in value["$r"].items():
            setattr(record, name, decode_value(item))
        return record
    if "$v" in value:
        tag, payload = value["$v"], decode_value(value.get("p"))
        # Results must be Ok/Err: the engine lowers those explicitly (a plain Variant is refused by an untagged
        # result type such as result<string, E>).
        if tag == "ok":
            return Ok(payload)
        if tag == "err":
            return Err(payload)
        return Variant(tag, payload)
    raise ValueError(f"cannot answer {sorted(value)} from a record")


def redact(value: Any, secrets: Mapping[str, str]) -> Any:
    """``value`` (tagged JSON, or an entry document) with each secret value (``{value: name}``) replaced by its
    placeholder in every string, ``$b`` and ``body_b64`` (strings and bytes that contain it too)."""
    if not secrets:
        return value
    pairs = sorted(secrets.items(), key=lambda pair: -len(pair[0]))  # longest first: "abc" before "ab"
    return _redact(value, pairs)


def _redact_text(text: str, pairs: Sequence[tuple[str, str]]) -> str:
    for secret, name in pairs:
        if secret in text:
            text = text.replace(secret, secret_placeholder(name))
    return text


def _redact_b64(text: Any, pairs: Sequence[tuple[str, str]]) -> Any:
    if not isinstance(text, str):
        return text
    try:
        data = base64.b64decode(text, validate=True)
    except ValueError:
        return _redact_text(text, pairs)
    changed = data
    for secret, name in pairs:
        raw = secret.encode()
        if raw in changed:
            changed = changed.replace(raw, secret_placeholder(name).encode())
    return text if changed is data else _b64(changed)


def _redact(value: Any, pairs: Sequence[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        return _redact_text(value, pairs)
    if isinstance(value, list):
        return [_redact(item, pairs) for item in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in ("$b", "body_b64"):
                out[key] = _redact_b64(item, pairs)
            else:
                out[_redact_text(key, pairs) if isinstance(key, str) else key] = _redact(item, pairs)
        return out
    return value


# -- journals ------------------------------------------------------------------------------------------------


class CallJournal(Protocol):
    """What :func:`~._host.host_function` hands each host call to, when an invocation carries one.

    ``run()`` performs the real call; ``args`` are the guest's arguments (the store excluded).
    """

    def call(self, name: str, args: tuple[Any, ...], run: Callable[[], Any]) -> Any: ...

    def output(self, level: str, stream: str, text: str) -> None: ...


class ReplayDivergence(Exception):
    """The replayed guest did not make the recorded call at ``index`` (``expected`` None: it made more calls
    than were recorded; ``actual`` None: fewer)."""

    def __init__(self, index: int, expected: dict[str, Any] | None, actual: dict[str, Any] | None, reason: str):
        super().__init__(f"replay diverged at call {index}: {reason}")
        self.index = index
        self.expected = expected
        self.actual = actual
        self.reason = reason


def _is_secret_answer(result: Any, args: tuple[Any, ...]) -> bool:
    """``Ok(value)`` of a secret function called with the secret's name."""
    return (isinstance(result, Variant) and result.tag == "ok" and isinstance(result.payload, str)
            and bool(result.payload) and bool(args) and isinstance(args[0], str))


def _trap_result(exc: BaseException) -> dict[str, str]:
    return {_TRAP: type(exc).__name__}


@final
class CallRecorder:
    """Records every host call of one invocation (and its output lines), for an entry document.

    Args:
        secret_functions: functions whose ``Ok(string)`` result is a secret value, named by their first
            argument (``alga:extension/secrets#get``); the values are kept apart and redacted from the record.
        max_calls: calls kept; later ones are counted, not kept.
        max_output_lines: output lines kept.
    """

    def __init__(
        self,
        *,
        secret_functions: frozenset[str] = frozenset(),
        max_calls: int = DEFAULT_MAX_CALLS,
        max_output_lines: int = DEFAULT_MAX_OUTPUT_LINES,
    ) -> None:
        self._secret_functions = secret_functions
        self._max_calls = max_calls
        self._max_output = max_output_lines
        self._started = time.perf_counter_ns()
        self._calls: list[dict[str, Any]] = []
        self._output: list[dict[str, str]] = []
        self._secrets: dict[str, str] = {}  # value -> name
        self._lock = threading.Lock()
        self.dropped_calls = 0
        self.dropped_output = 0

    def begin(self) -> None:
        """Count ``at_us`` from now (call when the guest starts; construction is the default)."""
        self._started = time.perf_counter_ns()

    def call(self, name: str, args: tuple[Any, ...], run: Callable[[], Any]) -> Any:
        start = time.perf_counter_ns()
        try:
            result = run()
        except BaseException as exc:
            self._keep(name, args, _trap_result(exc), start)
            raise
        self._keep(name, args, None, start, result)
        if name in self._secret_functions and _is_secret_answer(result, args):
            with self._lock:
                self._secrets[result.payload] = args[0]
        return result

    def _keep(self, name: str, args: tuple[Any, ...], trap: Any, start: int, result: Any = None) -> None:
        end = time.perf_counter_ns()
        with self._lock:
            if len(self._calls) >= self._max_calls:
                self.dropped_calls += 1
                return
            self._calls.append({
                "i": len(self._calls),
                "fn": name,
                "args": [encode_value(arg) for arg in args],
                "result": trap if trap is not None else encode_value(result),
                "at_us": (start - self._started) // 1000,
                "dur_us": (end - start) // 1000,
            })

    def output(self, level: str, stream: str, text: str) -> None:
        with self._lock:
            if len(self._output) >= self._max_output:
                self.dropped_output += 1
                return
            self._output.append({"stream": stream, "level": level, "text": text})

    @property
    def secrets_read(self) -> list[str]:
        """Names of the secrets the guest read (in the order first read)."""
        with self._lock:
            return list(dict.fromkeys(self._secrets.values()))

    @property
    def secret_values(self) -> dict[str, str]:
        """``{value: name}`` of the secrets read: what :func:`redact` removes from anything recorded with them."""
        with self._lock:
            return dict(self._secrets)

    def document_parts(self) -> dict[str, Any]:
        """``calls``, ``output``, ``secrets_read``, ``dropped_calls`` of the entry document, redacted."""
        with self._lock:
            calls, output, secrets = list(self._calls), list(self._output), dict(self._secrets)
            dropped = self.dropped_calls
        return {
            "calls": redact(calls, secrets),
            "output": redact(output, secrets),
            "secrets_read": list(dict.fromkeys(secrets.values())),
            "dropped_calls": dropped,
        }


@dataclass(frozen=True, slots=True)
class _Recorded:
    fn: str
    args: list[Any]
    result: Any


@final
class CallReplayer:
    """Answers host calls from a recorded entry's ``calls``, in order, without running them.

    After the guest ran: :attr:`divergence` is the first difference (None when every call matched), and
    :meth:`finish` reports recorded calls the guest never made.
    """

    def __init__(self, calls: Sequence[Mapping[str, Any]]) -> None:
        self._calls = [_Recorded(str(c["fn"]), list(c.get("args") or []), c.get("result")) for c in calls]
        self._next = 0
        self._lock = threading.Lock()
        self.divergence: ReplayDivergence | None = None
        self.output_lines: list[dict[str, str]] = []

    @property
    def calls_replayed(self) -> int:
        """Recorded calls matched so far."""
        return self._next

    def call(self, name: str, args: tuple[Any, ...], run: Callable[[], Any]) -> Any:
        with self._lock:
            if self.divergence is not None:  # the guest trapped already; a late call traps again
                raise self.divergence
            index = self._next
            actual = {"fn": name, "args": [encode_value(arg) for arg in args]}
            if index >= len(self._calls):
                raise self._diverge(index, None, actual, "the guest made a call that was not recorded")
            recorded = self._calls[index]
            expected = {"fn": recorded.fn, "args": recorded.args}
            if recorded.fn != name:
                raise self._diverge(index, expected, actual, f"called {name} instead of {recorded.fn}")
            if recorded.args != actual["args"]:
                raise self._diverge(index, expected, actual, f"called {name} with other arguments")
            self._next += 1
        if name in LIVE_FUNCTIONS:
            return run()
        result = recorded.result
        if isinstance(result, dict) and _TRAP in result:
            raise wasmtime.WasmtimeError(f"recorded trap of {name}: {result[_TRAP]}")
        return decode_value(result)

    def _diverge(
        self, index: int, expected: dict[str, Any] | None, actual: dict[str, Any] | None, reason: str
    ) -> ReplayDivergence:
        self.divergence = ReplayDivergence(index, expected, actual, reason)
        return self.divergence

    def output(self, level: str, stream: str, text: str) -> None:
        with self._lock:
            if len(self.output_lines) < DEFAULT_MAX_OUTPUT_LINES:
                self.output_lines.append({"stream": stream, "level": level, "text": text})

    def finish(self) -> ReplayDivergence | None:
        """The first divergence, including "the guest made fewer calls than recorded" (checked here)."""
        with self._lock:
            if self.divergence is None and self._next < len(self._calls):
                recorded = self._calls[self._next]
                self.divergence = ReplayDivergence(
                    self._next, {"fn": recorded.fn, "args": recorded.args}, None,
                    "the guest finished without making this recorded call",
                )
            return self.divergence
