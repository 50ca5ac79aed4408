"""Talking to the gateway: where it is, which credential, one JSON call, and refusals as ``<code>: <message>``.

The commands run synchronously (a CLI does one thing at a time), so this is httpx's blocking client. A refusal
of the gateway keeps its wire code (``invalid_token``, ``extension_not_found``…) as the first word on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Final, final

import httpx

from .._errors import CommandFailed, UsageError

__all__ = [
    "ADMIN_TOKEN_ENV",
    "DEFAULT_GATEWAY",
    "DEFAULT_TIMEOUT_S",
    "GATEWAY_ENV",
    "TOKEN_ENV",
    "GatewayClient",
    "add_gateway_arguments",
    "open_client",
    "print_json",
    "refusal",
    "segment",
]

GATEWAY_ENV: Final = "EXTCTL_GATEWAY"
ADMIN_TOKEN_ENV: Final = "EXTCTL_ADMIN_TOKEN"  # noqa: S105 - the name of a variable, not a secret
TOKEN_ENV: Final = "EXTCTL_TOKEN"  # noqa: S105 - likewise
DEFAULT_GATEWAY: Final = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S: Final = 30.0
_CODE_RE: Final = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_MAX_MESSAGE_CHARS: Final = 500


def add_gateway_arguments(parser: argparse.ArgumentParser, *, admin: bool = True) -> None:
    """``--gateway``, the credential (``--admin-token`` or ``--token``) and ``--timeout``."""
    parser.add_argument(
        "--gateway", metavar="URL", help=f"gateway base URL (default: ${GATEWAY_ENV} or {DEFAULT_GATEWAY})"
    )
    if admin:
        parser.add_argument(
            "--admin-token", metavar="TOKEN",
            help=f"GATEWAY_ADMIN_TOKEN, or a tenant admin's API token (default: ${ADMIN_TOKEN_ENV})",
        )
    else:
        parser.add_argument("--token", metavar="TOKEN", help=f"a user's agt_… API token (default: ${TOKEN_ENV})")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
        help=f"give up on the gateway after this long (default: {DEFAULT_TIMEOUT_S:g})",
    )


def gateway_url(args: argparse.Namespace) -> str:
    url: str = args.gateway or os.environ.get(GATEWAY_ENV) or DEFAULT_GATEWAY
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise UsageError(f"gateway URL {url!r} must be http(s)://host[:port][/prefix]")
    return url.rstrip("/")


def credential(args: argparse.Namespace) -> str:
    admin = hasattr(args, "admin_token")
    flag, env = ("--admin-token", ADMIN_TOKEN_ENV) if admin else ("--token", TOKEN_ENV)
    token: str | None = (args.admin_token if admin else args.token) or os.environ.get(env)
    if not token or not token.strip():
        raise UsageError(f"no credential: pass {flag} TOKEN or set {env}")
    token = token.strip()
    if any(ch.isspace() for ch in token) or not token.isprintable():
        raise UsageError(f"{flag} must be one printable word")
    return token


def segment(value: str) -> str:
    """``value`` percent-encoded as one path segment (an id can never reach another route)."""
    return urllib.parse.quote(value, safe="")


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


@final
class GatewayClient:
    """A bearer-authenticated httpx client for one gateway; use as a context manager.

    Args:
        base_url: ``http(s)://host[:port]`` of the gateway.
        token: the bearer credential.
        timeout_s: connect/read/write/pool timeout of each request.
        transport: an httpx transport instead of the network (tests).
    """

    def __init__(
        self, base_url: str, token: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self._client = httpx.Client(
            base_url=base_url, timeout=timeout_s, transport=transport,
            headers={"authorization": f"Bearer {token}", "user-agent": "extctl"},
        )

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client.close()

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None, *,
             params: Mapping[str, str] | None = None) -> Any:
        """One admin API call; returns the JSON answer (``None`` for 204).

        Raises:
            CommandFailed: the gateway refused (its code), or could not be reached / answered garbage.
        """
        with self._translate():
            response = self._client.request(method, path, json=body, params=params)
        if not response.is_success:
            raise refusal(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise CommandFailed(f"{method} {path} answered {response.status_code} without JSON",
                                code="bad_response") from None

    @contextmanager
    def stream(
        self, method: str, url: str, *, content: bytes | None, headers: Mapping[str, str]
    ) -> Iterator[httpx.Response]:
        """A streamed request (the body is read by the caller); transport failures become ``CommandFailed``."""
        with self._translate(), self._client.stream(method, url, content=content, headers=headers) as response:
            yield response

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException as exc:
            raise CommandFailed(f"{self.base_url}: {type(exc).__name__}", code="timeout") from None
        except httpx.ConnectError as exc:
            raise CommandFailed(f"cannot reach {self.base_url}: {exc}", code="connect_error") from None
        except httpx.HTTPError as exc:
            raise CommandFailed(f"{self.base_url}: {type(exc).__name__}: {exc}", code="http_error") from None


def open_client(args: argparse.Namespace) -> GatewayClient:
    """The client for the gateway and credential named by ``args`` (flags, else the environment)."""
    timeout: float = args.timeout
    if not timeout > 0:
        raise UsageError("--timeout must be positive")
    return GatewayClient(gateway_url(args), credential(args), timeout_s=timeout)


def refusal(response: httpx.Response) -> CommandFailed:
    """The gateway's ``{"error", "message", "fields"}`` answer as a ``CommandFailed`` carrying its code."""
    try:
        data = response.json()
    except ValueError:
        data = None
    status = f"HTTP {response.status_code}"
    if not isinstance(data, dict) or not isinstance(data.get("error"), str) or not _CODE_RE.fullmatch(data["error"]):
        reason = response.reason_phrase or httpx.codes.get_reason_phrase(response.status_code) or "error"
        return CommandFailed(f"{status} {reason}", code=f"http_{response.status_code}")
    parts: list[str] = []
    if isinstance(data.get("message"), str):
        parts.append(data["message"])
    fields = data.get("fields")
    if isinstance(fields, dict) and fields:
        parts.append("; ".join(f"{name}: {problem}" for name, problem in fields.items()))
    text = "; ".join(parts) or data["error"]
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[:_MAX_MESSAGE_CHARS] + "…"
    return CommandFailed(f"{text} ({status})", code=data["error"])
