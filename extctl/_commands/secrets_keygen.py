"""``extctl secrets-keygen --out KEY``: the runner's X25519 key pair for sealed secrets (KEY, KEY.pub).

Only the public key goes to stdout (it is what the gateway's ``RUNNER_SECRETS_PUBLIC_KEY`` needs); the private
key stays in ``KEY`` (mode 0600) and the note on stderr says where, so a terminal log never holds it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sealing

from .._errors import CommandFailed
from ._base import Command, write_atomic

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, metavar="KEY", help="private key path; KEY.pub beside it")
    parser.add_argument("--force", action="store_true", help="overwrite existing key files")


def _run(args: argparse.Namespace) -> int:
    private_path: Path = args.out
    public_path = private_path.with_name(private_path.name + ".pub")
    if not args.force:
        for path in (private_path, public_path):
            if path.exists() or path.is_symlink():
                raise CommandFailed(f"{path} already exists (use --force to replace it)", code="exists")
    private_b64, public_b64 = sealing.generate_keypair()
    write_atomic(private_path, (private_b64 + "\n").encode("ascii"), mode=0o600, overwrite=args.force)
    write_atomic(public_path, (public_b64 + "\n").encode("ascii"), mode=0o644, overwrite=args.force)
    print(public_b64)
    print(
        f"private key written to {private_path} (runner: RUNNER_SECRETS_PRIVATE_KEY=$(cat {private_path})); "
        f"gateway: RUNNER_SECRETS_PUBLIC_KEY={public_b64}",
        file=sys.stderr,
    )
    return 0


COMMAND = Command(
    name="secrets-keygen", help="generate the runner's X25519 key pair for sealed secrets", configure=_configure,
    run=_run,
)
