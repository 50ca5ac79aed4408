"""``extctl sign BUNDLE --key KEY``: a detached signature in ``BUNDLE.sig`` (base64, one line)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bundles import content_hash, read_bundle, sign_bundle

from ._base import Command, read_capped, write_atomic

__all__ = ["COMMAND"]


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path, metavar="BUNDLE", help="the bundle.tar.zst to sign")
    parser.add_argument("--key", required=True, type=Path, metavar="KEY", help="private key PEM (from keygen)")
    parser.add_argument("--out", type=Path, metavar="SIG", help="signature path (default: BUNDLE.sig)")


def _run(args: argparse.Namespace) -> int:
    bundle: Path = args.bundle
    data = read_capped(bundle)
    # Refuse to vouch for something the runner would reject anyway.
    read_bundle(data)
    signature = sign_bundle(data, read_capped(args.key, max_bytes=64 * 1024, what="key"))
    out: Path = args.out or bundle.with_name(bundle.name + ".sig")
    write_atomic(out, signature)
    print(f"{content_hash(data)} {out}")
    return 0


COMMAND = Command(name="sign", help="sign a bundle with a private key", configure=_configure, run=_run)
