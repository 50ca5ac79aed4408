"""``extctl tail EXTENSION_ID [--gateway URL] [--token T] [--request-id R] [--level L] [--stream S] [--json]``.

Follows an extension's debug events through the gateway's WebSocket (``/api/ext-debug/stream``), printing one
line per event until interrupted. The gateway and token come from the same flags and variables as the other
gateway commands (``EXTCTL_GATEWAY``, ``EXTCTL_TOKEN``). The token goes in an ``Authorization: Bearer``
header, never in the URL; prefer the variable to ``--token`` so it stays out of the process list and shell
history. The tenant is the token's own: there is no option to pick another.

Exit codes: 0 when the server ends the stream (or ``limit`` events were printed), 1 when the gateway refuses
(``unauthorized``, ``forbidden``, ``tenant_mismatch``, …) or cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final, TextIO
from urllib.parse import urlencode, urlsplit

import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, HandshakeError, WebSocketConnection, wrap_client_stream

from contract import JSON_NAMES, LEVELS, STREAMS

from .._errors import CommandFailed, UsageError
from ._base import Command
from ._gateway import add_gateway_arguments, credential, gateway_url

__all__ = [
    "COMMAND",
    "STREAM_PATH",
    "add_parser",
    "format_event",
    "open_websocket",
    "stream_url",
    "tail",
]

STREAM_PATH: Final = "/api/ext-debug/stream"
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_CLOSE_TIMEOUT: Final = 2.0
MAX_MESSAGE_SIZE: Final = 1024 * 1024

# Close codes 4000 + HTTP status carry the gateway's refusal; the reason is its error code.
_REFUSAL_RANGE: Final = range(4400, 4600)


def stream_url(
    gateway_url: str,
    extension_id: str,
    *,
    request_id: str | None = None,
    level: str | None = None,
    stream: str | None = None,
) -> str:
    """The WebSocket URL of the tail: ``http(s)://gateway[/base]`` becomes ``ws(s)://gateway[/base]/api/…?…``.

    Raises:
        UsageError: the gateway URL is not http(s)/ws(s) with a host.
    """
    parts = urlsplit(gateway_url.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise UsageError(f"gateway URL {gateway_url!r} must be http(s)://host[:port]")
    query = {"extensionId": extension_id}
    for name, value in (("requestId", request_id), ("level", level), ("stream", stream)):
        if value:
            query[name] = value
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{STREAM_PATH}?{urlencode(query)}"


def format_event(event: Mapping[str, Any]) -> str:
    """One human-readable line: ``time LEVEL stream request message``."""
    ts = event.get(JSON_NAMES["ts"], "")
    try:
        when = datetime.fromtimestamp(int(ts) / 1000, UTC).isoformat(timespec="milliseconds")
        when = when.replace("+00:00", "Z")
    except (TypeError, ValueError, OverflowError):
        when = str(event.get(JSON_NAMES["ts"], "?"))
    level = str(event.get(JSON_NAMES["level"], "?")).upper()
    stream = str(event.get(JSON_NAMES["stream"], "?"))
    request = str(event.get(JSON_NAMES["request"]) or "-")
    message = str(event.get(JSON_NAMES["message"], ""))
    if event.get(JSON_NAMES["truncated"]):
        message += " …[truncated]"
    return f"{when} {level:<5} {stream:<6} {request} {message}"


@asynccontextmanager
async def open_websocket(
    url: str, headers: list[tuple[bytes, bytes]], *, connect_timeout: float
) -> AsyncIterator[WebSocketConnection]:
    """trio-websocket's client, except that this side owns the TCP stream and always closes it.

    (trio-websocket 0.12 leaves the socket open when the server closes the WebSocket first, which is how
    the gateway refuses.)
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = host if port in (80, 443) else f"{host}:{port}"
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(connect_timeout):
                if secure:
                    stream: Any = await trio.open_ssl_over_tcp_stream(
                        host, port, ssl_context=ssl.create_default_context(), https_compatible=True
                    )
                else:
                    stream = await trio.open_tcp_stream(host, port)
            try:
                with trio.fail_after(connect_timeout):
                    ws = await wrap_client_stream(
                        nursery, stream, host_header, resource, extra_headers=headers, max_message_size=MAX_MESSAGE_SIZE
                    )
                try:
                    yield ws
                finally:
                    with trio.move_on_after(DEFAULT_CLOSE_TIMEOUT) as scope:
                        scope.shield = True
                        await ws.aclose()
            finally:
                await trio.aclose_forcefully(stream)
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The nursery wraps whatever ends the connection (ours or the reader task's); callers get the one error.
        leaves = [exc for exc in _leaves(group) if not isinstance(exc, trio.Cancelled)]
        if len(leaves) == 1:
            raise leaves[0] from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


async def tail(
    gateway_url: str,
    extension_id: str,
    token: str,
    *,
    request_id: str | None = None,
    level: str | None = None,
    stream: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    json_lines: bool = False,
    limit: int | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> int:
    """Print the extension's debug events as they arrive (after the gateway's replay of recent ones).

    Args:
        gateway_url: ``http(s)://host[:port]`` of the gateway.
        extension_id: whose events.
        token: an API token of the tenant (needs ``extension:read``).
        request_id: only this request's events.
        level: only this level and more severe ones.
        stream: only ``stdout``, ``stderr`` or ``log`` (comma-separated for several).
        out: where events go (default: ``sys.stdout`` at call time).
        err: where notices go: events dropped because this client was slow, stream errors (default:
            ``sys.stderr``).
        json_lines: print each event as its JSON object instead of a formatted line.
        limit: stop after this many events (``None``: until the server closes or Ctrl-C).
        connect_timeout: seconds to connect and complete the handshake.

    Returns:
        the number of events printed.

    Raises:
        CommandFailed: the gateway refused (the code is its error code) or could not be reached.
    """
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    url = stream_url(gateway_url, extension_id, request_id=request_id, level=level, stream=stream)
    headers = [(b"authorization", f"Bearer {token}".encode())]
    printed = 0
    try:
        async with open_websocket(url, headers, connect_timeout=connect_timeout) as ws:
            while limit is None or printed < limit:
                item = json.loads(await ws.get_message())
                kind = item.get("type") if isinstance(item, dict) else "invalid"
                if kind is None:
                    print(json.dumps(item, ensure_ascii=False) if json_lines else format_event(item), file=out)
                    out.flush()
                    printed += 1
                elif kind == "dropped":
                    print(f"-- {item.get('count')} events dropped: this client fell behind --", file=err)
                elif kind == "error":
                    print(f"-- stream error: {item.get('code')} --", file=err)
    except ConnectionClosed as exc:
        code = exc.reason.code if exc.reason is not None else 1006
        reason = (exc.reason.reason if exc.reason is not None else None) or ""
        if code in _REFUSAL_RANGE:
            raise CommandFailed(f"the gateway refused the tail (close code {code})", code=reason or "refused") from None
        if code not in (1000, 1001):
            raise CommandFailed(f"the stream ended: {code} {reason}".strip(), code="stream_closed") from None
    except ConnectionRejected as exc:
        raise CommandFailed(f"the gateway answered HTTP {exc.status_code}", code=f"http_{exc.status_code}") from None
    except trio.TooSlowError:
        raise CommandFailed(f"{gateway_url}: no connection within {connect_timeout:g} s", code="timeout") from None
    except (HandshakeError, OSError) as exc:
        raise CommandFailed(f"cannot reach {gateway_url}: {exc}", code="connect_error") from None
    return printed


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser, admin=False)
    parser.add_argument("extension_id", metavar="EXTENSION_ID", help="the extension whose events to follow")
    parser.add_argument("--request-id", metavar="ID", help="only this request's events")
    parser.add_argument("--level", choices=LEVELS, help="only this level and more severe ones")
    parser.add_argument("--stream", metavar="NAME", help=f"only these streams, comma-separated ({', '.join(STREAMS)})")
    parser.add_argument("--json", action="store_true", dest="json_lines", help="print each event as a JSON line")
    parser.add_argument("--limit", type=int, metavar="N", help="stop after N events")


def _run(args: argparse.Namespace) -> int:
    gateway = gateway_url(args)
    token = credential(args)
    if args.limit is not None and args.limit <= 0:
        raise UsageError("--limit must be positive")
    if not args.timeout > 0:
        raise UsageError("--timeout must be positive")
    run = partial(
        tail,
        gateway,
        args.extension_id,
        token,
        request_id=args.request_id,
        level=args.level,
        stream=args.stream,
        json_lines=args.json_lines,
        limit=args.limit,
        connect_timeout=args.timeout,
    )
    trio.run(run)
    return 0


COMMAND = Command(name="tail", help="follow an extension's debug events", configure=_configure, run=_run)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``tail`` on an ``argparse`` subparsers object (what ``build_parser`` does for ``COMMAND``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(COMMAND.name, help=COMMAND.help, description=COMMAND.help)
    COMMAND.configure(parser)
    parser.set_defaults(run=COMMAND.run)
    return parser
