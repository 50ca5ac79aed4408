"""Guest stdout/stderr: reassembled into lines, bounded per invocation, sent to the invocation's event sink.

wasmtime calls the WASI output callbacks possibly from its own threads, delivers one ``print`` in several
chunks and cuts single writes at 8 KiB: hence the lock and the per-stream partial-line buffers. Past
``max_bytes`` or ``max_lines`` per invocation output is dropped (and counted, and reported once at the end);
a line longer than ``max_line_bytes`` is cut into several events. The last bytes of stderr are kept
regardless, for trap messages (a guest's traceback comes last).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Final, final

from ._invocation import EventLevel, EventSink, EventStream, InvocationCounters

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_MAX_OUTPUT_BYTES",
    "DEFAULT_MAX_OUTPUT_LINES",
    "DEFAULT_STDERR_TAIL_BYTES",
    "STREAM_LEVELS",
    "OutputCapture",
]

DEFAULT_MAX_OUTPUT_BYTES: Final = 64 * 1024
"""stdout plus stderr bytes forwarded per invocation."""
DEFAULT_MAX_OUTPUT_LINES: Final = 1000
"""stdout plus stderr lines (events) forwarded per invocation."""
DEFAULT_MAX_LINE_BYTES: Final = 8 * 1024
DEFAULT_STDERR_TAIL_BYTES: Final = 2 * 1024

STREAM_LEVELS: Final[dict[EventStream, EventLevel]] = {"stdout": "info", "stderr": "warn"}
"""Debug-event level of each stream's lines."""


@final
class OutputCapture:
    """Line-assembling, bounded capture of one invocation's stdout and stderr.

    Args:
        emit: ``(level, stream, message)`` sink (usually :meth:`Invocation.emit`).
        counters: the invocation's counters (``stdout_bytes``, ``stderr_bytes``, ``output_bytes_dropped``).
    """

    def __init__(
        self,
        emit: EventSink,
        counters: InvocationCounters,
        *,
        max_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        max_lines: int = DEFAULT_MAX_OUTPUT_LINES,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        tail_bytes: int = DEFAULT_STDERR_TAIL_BYTES,
    ) -> None:
        if max_bytes < 0 or max_lines < 0 or max_line_bytes < 1 or tail_bytes < 0:
            raise ValueError("output limits must not be negative")
        self._emit = emit
        self._counters = counters
        self._max_bytes = max_bytes
        self._max_lines = max_lines
        self._max_line = max_line_bytes
        self._tail_bytes = tail_bytes
        self._lock = threading.Lock()
        self._partial = {stream: bytearray() for stream in STREAM_LEVELS}
        self._captured = 0
        self._lines = 0
        self._full = False
        self._dropped = 0
        self._tail = b""
        self._closed = False

    def writer(self, stream: EventStream) -> Callable[[bytes], None]:
        """The callback for ``WasiConfig.stdout_custom`` / ``stderr_custom``; never raises."""
        if stream not in STREAM_LEVELS:
            raise ValueError(f"unknown stream {stream!r}")

        def write(data: bytes) -> None:
            # Losing output must not fail the guest's write (wasmtime-py would print and return EIO).
            with contextlib.suppress(Exception):
                self.write(stream, data)

        return write

    def write(self, stream: EventStream, data: bytes) -> None:
        """Take one chunk of output; complete lines go to the sink."""
        with self._lock:
            if self._closed:
                return
            self._counters.add(f"{stream}_bytes", len(data))
            if stream == "stderr" and self._tail_bytes:
                self._tail = (self._tail + data)[-self._tail_bytes :]
            if self._full:
                self._dropped += len(data)
                return
            room = self._max_bytes - self._captured
            if len(data) > room:
                self._dropped += len(data) - room
                data = data[:room]
            self._captured += len(data)
            lines = self._take_lines(stream, data)
            room_lines = self._max_lines - self._lines
            if len(lines) > room_lines:
                self._dropped += sum(len(line) + 1 for line in lines[room_lines:])
                lines = lines[:room_lines]
            self._lines += len(lines)
            if self._lines >= self._max_lines or self._captured >= self._max_bytes:
                # Budget spent: what is still buffered is dropped too, and later writes cost nothing.
                self._full = True
                for buffer in self._partial.values():
                    self._dropped += len(buffer)
                    buffer.clear()
        self._send(stream, lines)

    def _take_lines(self, stream: EventStream, data: bytes) -> list[bytes]:
        buffer = self._partial[stream]
        buffer += data
        lines: list[bytes] = []
        if b"\n" in data:
            *complete, rest = bytes(buffer).split(b"\n")
            for line in complete:
                lines.extend(line[start : start + self._max_line] for start in range(0, len(line) or 1, self._max_line))
            buffer[:] = rest
        while len(buffer) >= self._max_line:
            lines.append(bytes(buffer[: self._max_line]))
            del buffer[: self._max_line]
        return lines

    def _send(self, stream: EventStream, lines: list[bytes]) -> None:
        level = STREAM_LEVELS[stream]
        for line in lines:
            self._emit(level, stream, line.rstrip(b"\r").decode("utf-8", "replace"))

    def close(self) -> None:
        """Flush partial lines and report dropped output; later writes are ignored."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending = {stream: [bytes(buffer)] for stream, buffer in self._partial.items() if buffer}
            dropped = self._dropped
        for stream, lines in pending.items():
            self._send(stream, lines)
        if dropped:
            self._counters.add("output_bytes_dropped", dropped)
            self._emit("warn", "stderr", f"[runner] guest output truncated: {dropped} bytes dropped")

    @property
    def stderr_tail(self) -> str:
        """The last bytes written to stderr, decoded."""
        with self._lock:
            return self._tail.decode("utf-8", "replace")
