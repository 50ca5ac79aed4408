"""WASI for guests: wasmtime's WASIp2, with clocks and polling replaced so no wait outlives the invocation.

wasmtime implements ``wasi:io/poll`` in native code: a guest blocked in ``pollable.block`` (a ``sleep``) holds
its thread until the timer fires, and neither epochs nor trio can stop it. The pollable resource type cannot
be produced from Python, so this module links its own: ``wasi:io/poll`` (the ``pollable`` resource, ``ready``,
``block``, ``poll``), ``wasi:clocks/monotonic-clock`` (all of it, so ``now`` and ``subscribe-instant`` share
one clock), and every other function that returns a pollable (stream and socket ``subscribe``). A pollable is
an instant; waiting for one sleeps in short slices and traps as soon as the invocation is cancelled or out
of time. Stream and socket pollables are always ready (stdout/stderr accept writes at once, stdin is empty,
sockets are refused).

The wall clock (``wasi:clocks/wall-clock``) and randomness (``wasi:random/random``, ``insecure``,
``insecure-seed``) are this module's too, for another reason: every value a guest observes from outside must
pass through :func:`host_function`, so an invocation journal records it and a replay answers it.

The definitions are added to the instances ``add_wasip2()`` created, under the exact version wasmtime uses
(:func:`detect_wasip2_version`): wasmtime resolves every ``0.2.x`` import to that instance, so all guest
versions see these functions, and the other functions of the same interfaces stay wasmtime's.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any, Final

import wasmtime
from wasmtime.component import Component, Linker, LinkerInstance, ResourceAny, ResourceType

from ._callstate import POLLABLE_TYPE, current_call
from ._errors import EngineError
from ._host import host_function, wit_record
from ._invocation import Invocation

__all__ = ["WASIP2_VERSION_HINT", "define_wasi_overrides", "detect_wasip2_version", "new_wasi_config"]

WASIP2_VERSION_HINT: Final = "0.2.12"
"""The version wasmtime 50's ``add_wasip2()`` defines; probed first, then others are tried."""
_PROBE_PATCHES: Final = range(64)
MAX_RANDOM_BYTES: Final = 1024 * 1024
"""Largest ``get-random-bytes`` answer; a larger request traps (no guest needs more entropy per call)."""

_SUBSCRIBERS: Final = {
    "wasi:io/streams": ("[method]input-stream.subscribe", "[method]output-stream.subscribe"),
    "wasi:sockets/tcp": ("[method]tcp-socket.subscribe",),
    "wasi:sockets/udp": (
        "[method]udp-socket.subscribe",
        "[method]incoming-datagram-stream.subscribe",
        "[method]outgoing-datagram-stream.subscribe",
    ),
    "wasi:sockets/ip-name-lookup": ("[method]resolve-address-stream.subscribe",),
}
"""Functions besides the clock that return a ``pollable``: they must return ours (one resource type)."""

_PROBE_WAT: Final = """(component
  (import "wasi:clocks/monotonic-clock@{version}" (instance
    (export "now" (func (result u64)))
    (export "resolution" (func (result u64)))))
)"""


def _probe_now(_store: Any) -> int:
    return 0


def _is_wasmtime_version(engine: wasmtime.Engine, version: str) -> bool:
    # Adding to an instance that exists merges into it; a new one holds only what we add. So a component
    # importing `resolution` at `version` links only when `version` is the instance add_wasip2() created.
    linker = Linker(engine)
    linker.add_wasip2()
    linker.allow_shadowing = True
    with linker.root() as root, root.add_instance(f"wasi:clocks/monotonic-clock@{version}") as clock:
        clock.add_func("now", _probe_now)
    component = Component(engine, _PROBE_WAT.format(version=version))
    store = wasmtime.Store(engine)
    try:
        store.set_wasi(wasmtime.WasiConfig())
        linker.instantiate(store, component)
    except wasmtime.WasmtimeError:
        return False
    finally:
        store.close()
        linker.close()
    return True


def detect_wasip2_version(engine: wasmtime.Engine) -> str:
    """The ``0.2.x`` version under which ``Linker.add_wasip2()`` defines WASI in this wasmtime.

    Raises:
        EngineError: no ``0.2.x`` version found (the overrides would not reach guests).
    """
    candidates = [WASIP2_VERSION_HINT, *(f"0.2.{patch}" for patch in _PROBE_PATCHES)]
    for version in dict.fromkeys(candidates):
        if _is_wasmtime_version(engine, version):
            return version
    raise EngineError("cannot find the version of wasmtime's WASIp2 definitions")


def new_wasi_config(stdout: Callable[[bytes], None], stderr: Callable[[bytes], None]) -> wasmtime.WasiConfig:
    """WASI for one invocation: no arguments, empty environment, no preopens, no network, empty stdin,
    stdout/stderr to the given callbacks."""
    config = wasmtime.WasiConfig()  # no arguments, no environment, no stdin: the defaults (setting them again
    config.stdout_custom = stdout  # costs two calls into the C API per invocation)
    config.stderr_custom = stderr
    return config


# -- the host functions -------------------------------------------------------------------------------------


def _now(_invocation: Invocation) -> int:
    return time.monotonic_ns()


def _resolution(_invocation: Invocation) -> int:
    return max(1, round(time.get_clock_info("monotonic").resolution * 1e9))


def _subscribe_duration(_invocation: Invocation, duration: int) -> Any:
    return current_call().new_pollable(time.monotonic_ns() + duration)


def _subscribe_instant(_invocation: Invocation, when: int) -> Any:
    return current_call().new_pollable(when)


def _subscribe_ready(_invocation: Invocation, _handle: Any) -> Any:
    return current_call().new_pollable(0)


def _wall_now(_invocation: Invocation) -> Any:
    seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    return wit_record(seconds=seconds, nanoseconds=nanoseconds)


def _wall_resolution(_invocation: Invocation) -> Any:
    resolution_ns = max(1, round(time.get_clock_info("time").resolution * 1e9))
    seconds, nanoseconds = divmod(resolution_ns, 1_000_000_000)
    return wit_record(seconds=seconds, nanoseconds=nanoseconds)


def _checked_length(length: int) -> int:
    if length > MAX_RANDOM_BYTES:
        raise wasmtime.WasmtimeError(f"wasi:random: {length} bytes asked, at most {MAX_RANDOM_BYTES} per call")
    return length


def _random_bytes(_invocation: Invocation, length: int) -> bytes:
    return os.urandom(_checked_length(length))


def _random_u64(_invocation: Invocation) -> int:
    return int.from_bytes(os.urandom(8), "little")


def _insecure_bytes(_invocation: Invocation, length: int) -> bytes:
    return random.randbytes(_checked_length(length))  # noqa: S311 - the interface is the insecure one


def _insecure_u64(_invocation: Invocation) -> int:
    return random.getrandbits(64)


def _insecure_seed(_invocation: Invocation) -> tuple[int, int]:
    return (int.from_bytes(os.urandom(8), "little"), int.from_bytes(os.urandom(8), "little"))


def _rep(store: Any, handle: ResourceAny) -> int:
    return handle.to_host(store).rep


def _ready(_invocation: Invocation, store: Any, handle: ResourceAny) -> bool:
    return time.monotonic_ns() >= current_call().ready_at(_rep(store, handle))


def _block(_invocation: Invocation, store: Any, handle: ResourceAny) -> None:
    state = current_call()
    state.wait_until(state.ready_at(_rep(store, handle)))


def _poll(_invocation: Invocation, store: Any, handles: list[ResourceAny]) -> list[int]:
    if not handles:
        raise wasmtime.WasmtimeError("wasi:io/poll.poll: empty list of pollables")
    state = current_call()
    ready_at = [state.ready_at(_rep(store, handle)) for handle in handles]
    while True:
        now = time.monotonic_ns()
        ready = [index for index, instant in enumerate(ready_at) if now >= instant]
        if ready:
            return ready
        state.wait_until(min(ready_at))


def _drop_pollable(_store: Any, rep: int) -> None:
    try:
        state = current_call()
    except LookupError:
        return
    state.drop_pollable(rep)


def define_wasi_overrides(root: LinkerInstance, version: str) -> None:
    """Define this module's WASI functions over ``add_wasip2()``'s (needs ``allow_shadowing``)."""
    with root.add_instance(f"wasi:io/poll@{version}") as poll:
        poll.add_resource("pollable", ResourceType.host(POLLABLE_TYPE), _drop_pollable)
        poll.add_func("[method]pollable.ready", host_function(_ready, with_store=True))
        poll.add_func("[method]pollable.block", host_function(_block, with_store=True))
        poll.add_func("poll", host_function(_poll, with_store=True))
    with root.add_instance(f"wasi:clocks/monotonic-clock@{version}") as clock:
        clock.add_func("now", host_function(_now))
        clock.add_func("resolution", host_function(_resolution))
        clock.add_func("subscribe-instant", host_function(_subscribe_instant))
        clock.add_func("subscribe-duration", host_function(_subscribe_duration))
    with root.add_instance(f"wasi:clocks/wall-clock@{version}") as wall:
        wall.add_func("now", host_function(_wall_now))
        wall.add_func("resolution", host_function(_wall_resolution))
    with root.add_instance(f"wasi:random/random@{version}") as secure:
        secure.add_func("get-random-bytes", host_function(_random_bytes))
        secure.add_func("get-random-u64", host_function(_random_u64))
    with root.add_instance(f"wasi:random/insecure@{version}") as insecure:
        insecure.add_func("get-insecure-random-bytes", host_function(_insecure_bytes))
        insecure.add_func("get-insecure-random-u64", host_function(_insecure_u64))
    with root.add_instance(f"wasi:random/insecure-seed@{version}") as seed:
        seed.add_func("insecure-seed", host_function(_insecure_seed))
    for interface, functions in _SUBSCRIBERS.items():
        with root.add_instance(f"{interface}@{version}") as instance:
            for name in functions:
                instance.add_func(name, host_function(_subscribe_ready))
