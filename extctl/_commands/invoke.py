"""``extctl invoke EXTENSION_ID PATH [-X METHOD] [-d DATA | --data-file F] [-H 'k: v' …]``: call an extension.

Calls ``/api/ext/{EXTENSION_ID}{PATH}`` on the gateway with a user's API token and streams the body to stdout,
like ``curl``: with ``-i`` the status line and the response headers go to stderr first. On a terminal a body that
does not end with a newline gets one, so the prompt starts on its own line (a pipe gets the bytes unchanged).
Exit 0 for a 2xx answer; otherwise 1, with ``http_status: <code> <reason>`` on stderr (the CLI's refusal line).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Final

import httpx

from .._errors import UsageError
from ._base import Command
from ._gateway import add_gateway_arguments, open_client, segment
from ._inputs import DEFAULT_MAX_INPUT_BYTES, read_limited

__all__ = ["COMMAND"]

METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_CHUNK: Final = 64 * 1024


def _configure(parser: argparse.ArgumentParser) -> None:
    add_gateway_arguments(parser, admin=False)
    parser.add_argument("extension_id", metavar="EXTENSION_ID", help="an extension installed for your tenant")
    parser.add_argument("path", metavar="PATH", help="the endpoint path, with an optional ?query (e.g. /items?x=1)")
    parser.add_argument(
        "-X", "--request", dest="method", type=str.upper, choices=METHODS, metavar="METHOD",
        help="HTTP method (default: GET, or POST when a body is given)",
    )
    body = parser.add_mutually_exclusive_group()
    body.add_argument("-d", "--data", metavar="DATA", help="request body (UTF-8 text)")
    body.add_argument("--data-file", metavar="FILE", help="request body from FILE ('-' reads stdin)")
    parser.add_argument(
        "-H", "--header", dest="headers", action="append", default=[], metavar="'NAME: VALUE'",
        help="request header; repeatable",
    )
    parser.add_argument(
        "-i", "--include", action="store_true", help="print the status line and response headers to stderr"
    )


def _headers(items: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":")
        name = name.strip()
        if not sep or not name or any(ch.isspace() for ch in name):
            raise UsageError(f"-H {item!r} is not 'NAME: VALUE'")
        if name.lower() in ("authorization", "cookie", "host", "content-length"):
            raise UsageError(f"-H {name} is set by extctl (use --token for the credential)")
        headers[name.lower()] = value.strip()
    return headers


def _content_type(data: bytes) -> str:
    """JSON when the body parses as JSON (extension endpoints mostly speak it), else opaque bytes."""
    try:
        json.loads(data)
    except ValueError:
        return "application/octet-stream"
    return "application/json"


def _run(args: argparse.Namespace) -> int:
    headers = _headers(args.headers)
    data: bytes | None = None
    if args.data is not None:
        data = args.data.encode("utf-8")
    elif args.data_file is not None:
        data = read_limited(args.data_file, max_bytes=DEFAULT_MAX_INPUT_BYTES)
    method: str = args.method or ("POST" if data is not None else "GET")
    if data is not None and "content-type" not in headers:
        headers["content-type"] = _content_type(data)
    path: str = args.path if args.path.startswith("/") else "/" + args.path
    with open_client(args) as client:
        url = f"{client.base_url}/api/ext/{segment(args.extension_id)}{path}"
        with client.stream(method, url, content=data, headers=headers) as response:
            # Hypercorn (like many servers) sends no reason phrase; the standard one reads better.
            reason = response.reason_phrase or httpx.codes.get_reason_phrase(response.status_code)
            if args.include:
                print(f"{response.http_version} {response.status_code} {reason}".rstrip(), file=sys.stderr)
                for name, value in response.headers.multi_items():
                    print(f"{name}: {value}", file=sys.stderr)
            out = sys.stdout.buffer
            last = b"\n"
            for chunk in response.iter_bytes(_CHUNK):
                out.write(chunk)
                last = chunk[-1:] or last
            if last != b"\n" and sys.stdout.isatty():
                out.write(b"\n")
            out.flush()
            ok = response.is_success
    if not ok and not args.include:
        print(f"http_status: {response.status_code} {reason}".rstrip(), file=sys.stderr)
    return 0 if ok else 1


COMMAND = Command(name="invoke", help="call an extension endpoint through the gateway", configure=_configure,
                  run=_run)
