"""``extctl keygen --out KEY [--algorithm ed25519|ecdsa-p256]``: a signing key pair (KEY, KEY.pub)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bundles import TrustBundle, generate_private_key

from .._errors import CommandFailed
from ._base import Command, write_atomic

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, metavar="KEY", help="private key path; KEY.pub beside it")
    parser.add_argument(
        "--algorithm",
        choices=("ed25519", "ecdsa-p256"),
        default="ed25519",
        help="ed25519 (default) or ecdsa-p256 (cosign-compatible ECDSA P-256 / SHA-256)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing key files")


def _run(args: argparse.Namespace) -> int:
    private_path: Path = args.out
    public_path = private_path.with_name(private_path.name + ".pub")
    if not args.force:
        for path in (private_path, public_path):
            if path.exists() or path.is_symlink():
                raise CommandFailed(f"{path} already exists (use --force to replace it)", code="exists")
    private_pem, public_pem = generate_private_key(args.algorithm)
    write_atomic(private_path, private_pem, mode=0o600, overwrite=args.force)
    write_atomic(public_path, public_pem, mode=0o644, overwrite=args.force)
    fingerprint = TrustBundle.from_pem(public_pem).fingerprints[0]
    print(f"{fingerprint} {private_path} {public_path}")
    return 0


COMMAND = Command(name="keygen", help="generate a bundle signing key pair", configure=_configure, run=_run)
