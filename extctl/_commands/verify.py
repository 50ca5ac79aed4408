"""``extctl verify BUNDLE [--sig FILE] [--trust-bundle PEM] [--hash H]``: would the runner accept it?

Checks, in the runner's order: the content hash (when ``--hash`` is given), the signature policy (a trust
bundle from ``--trust-bundle`` or ``SIGNING_TRUST_BUNDLE`` requires a trusted signature; without one the
bundle passes with a warning, as ``signed`` when a signature is there, well formed but not checked, else as
``unsigned-dev``), then the archive members, the manifest and the component entry.
Manifest keys outside the schema are accepted, as the runner accepts them, with a warning naming each.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bundles import (
    SignaturePolicy,
    TrustBundle,
    content_hash,
    decode_signature,
    read_bundle,
    verify_content_hash,
)

from ._base import Command, read_capped

__all__ = ["COMMAND", "TRUST_BUNDLE_ENV"]

TRUST_BUNDLE_ENV = "SIGNING_TRUST_BUNDLE"
_MAX_SIGNATURE_FILE = 64 * 1024


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path, metavar="BUNDLE", help="the bundle.tar.zst to check")
    parser.add_argument("--sig", type=Path, metavar="FILE", help="detached signature (default: BUNDLE.sig if present)")
    parser.add_argument(
        "--trust-bundle", type=Path, metavar="PEM", help=f"trusted public keys (default: ${TRUST_BUNDLE_ENV} if set)"
    )
    parser.add_argument("--hash", metavar="sha256:HEX", help="the content hash the bundle must have")


def _run(args: argparse.Namespace) -> int:
    bundle: Path = args.bundle
    data = read_capped(bundle)
    digest = content_hash(data)
    if args.hash is not None:
        verify_content_hash(data, args.hash)
    trust_path = args.trust_bundle or (Path(os.environ[TRUST_BUNDLE_ENV]) if os.environ.get(TRUST_BUNDLE_ENV) else None)
    trust = TrustBundle.from_file(trust_path) if trust_path is not None else None
    sig_path: Path | None = args.sig
    if sig_path is None:
        default = bundle.with_name(bundle.name + ".sig")
        sig_path = default if default.is_file() else None
    signature = read_capped(sig_path, max_bytes=_MAX_SIGNATURE_FILE, what="signature") if sig_path else None
    if trust is None:
        # What SignaturePolicy(None) decides (the runner runs it), minus its log line (said below); a signature
        # beside the bundle is reported, once it is known to be well formed.
        if signature is not None:
            decode_signature(signature)
        state, key = ("signed" if signature is not None else "unsigned-dev"), ""
    else:
        status = SignaturePolicy(trust).check(data, signature, digest)
        state, key = status.state, f" key={status.key_fingerprint}"
    contents = read_bundle(data)
    for warning in contents.manifest.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if trust is None:
        print(f"warning: no trust bundle given (--trust-bundle or ${TRUST_BUNDLE_ENV}): signature not verified "
              "(development mode)", file=sys.stderr)
    print(f"ok {digest} signature={state}{key} entry={contents.entry_path} files={len(contents.members)}")
    return 0


COMMAND = Command(name="verify", help="check a bundle as the runner would", configure=_configure, run=_run)
