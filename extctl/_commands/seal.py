"""``extctl seal --public-key KEY.pub|B64 --tenant T --extension E (--json … | --file F)``: a sealed envelope.

Prints the envelope JSON the runner opens (HPKE, ``hpke-x25519-chacha20poly1305:v2``, bound to the tenant, the
extension and the expiry). The gateway seals on its own (``set-secrets``); this is for checking keys and for tooling.
"""

from __future__ import annotations

import argparse
import base64
import os
from pathlib import Path
from typing import Final

import sealing

from .._errors import CommandFailed, UsageError
from ._base import Command
from ._gateway import print_json
from ._inputs import add_map_arguments, parse_timestamp, read_limited, read_string_map

__all__ = ["COMMAND"]

_MAX_KEY_FILE: Final = 4096
_KEY_BYTES: Final = 32


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--public-key", required=True, metavar="KEY.pub|B64",
        help="the runner's public key: a file from secrets-keygen, or the base64 key itself",
    )
    parser.add_argument("--tenant", required=True, metavar="T", help="tenant id the envelope is bound to")
    parser.add_argument("--extension", required=True, metavar="E", help="extension id the envelope is bound to")
    parser.add_argument("--expires-at", metavar="RFC3339", help="the envelope does not open after this time")
    add_map_arguments(parser, "secrets")


def _is_raw_key(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == _KEY_BYTES
    except ValueError:
        return False


def _public_key(value: str) -> str:
    """The base64 key in file ``value``, else ``value`` itself (a base64 key may contain ``/``)."""
    if Path(value).is_file():
        return read_limited(value, max_bytes=_MAX_KEY_FILE).decode("ascii", errors="replace").strip()
    if not _is_raw_key(value) and (os.sep in value or value.endswith(".pub")):
        raise CommandFailed(f"no such key file {value}", code="io_error")
    return value.strip()  # sealing says invalid_key when it is not a key either


def _run(args: argparse.Namespace) -> int:
    if not args.tenant or not args.extension:
        raise UsageError("--tenant and --extension must not be empty")
    expires_at = parse_timestamp(args.expires_at, "--expires-at") if args.expires_at is not None else None
    public_key = _public_key(args.public_key)
    secrets = read_string_map(args)
    try:
        envelope = sealing.seal(secrets, public_key, tenant_id=args.tenant, extension_id=args.extension,
                                expires_at=expires_at)
    except sealing.SealingError as exc:
        raise CommandFailed(exc.message, code=exc.code) from None
    del secrets
    print_json(envelope)
    return 0


COMMAND = Command(name="seal", help="seal a secrets map to the runner's public key", configure=_configure, run=_run)
