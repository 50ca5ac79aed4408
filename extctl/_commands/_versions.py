"""What the version commands share (``upgrade``, ``consent``, ``rollback``, ``history``, ``diff``, ``install``):
how a ``--version`` argument names a version, and which tenant a command acts on."""

from __future__ import annotations

import argparse
import re
from typing import Final

from contract import CONTENT_HASH_PREFIX

from .._errors import CommandFailed, UsageError
from ._gateway import GatewayClient

__all__ = ["add_reason_argument", "add_tenant_argument", "tenant_of", "version_field"]

_NOT_A_USER: Final = frozenset({"invalid_token", "unauthorized"})
"""What ``/api/v1/me`` answers for a credential that is no user's (the gateway admin token)."""
_UUID_RE: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def version_field(value: str) -> dict[str, str]:
    """The body field that names ``value``: ``content_hash`` (``sha256:…``), ``version_id`` (a registry id) or
    ``version`` (a version string such as ``1.2.0``; the newest bundle registered under it)."""
    if value.startswith(CONTENT_HASH_PREFIX):
        return {"content_hash": value}
    if _UUID_RE.fullmatch(value):
        return {"version_id": value}
    return {"version": value}


def add_tenant_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", metavar="T",
                        help="the tenant of the install (default: the tenant of a tenant admin's --admin-token)")


def add_reason_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", metavar="TEXT", help="why, kept in the install's history")


def tenant_of(client: GatewayClient, args: argparse.Namespace) -> str:
    """``--tenant``, else the tenant the credential belongs to (``/api/v1/me``; the admin token has none)."""
    if args.tenant:
        tenant: str = args.tenant
        return tenant
    try:
        me = client.call("GET", "/api/v1/me")
    except CommandFailed as exc:
        if exc.code not in _NOT_A_USER:
            raise
        raise UsageError("--tenant T is required (the gateway admin token belongs to no tenant)") from None
    if not isinstance(me, dict) or not isinstance(me.get("tenant_id"), str):
        raise UsageError("--tenant T is required")
    found: str = me["tenant_id"]
    return found
