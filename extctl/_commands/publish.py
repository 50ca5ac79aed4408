"""``extctl publish BUNDLE --store URL [--sig FILE]``: write a bundle to the store; prints its content hash."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import trio

from bundles import TrustBundle, publish_bundle
from bundles.store import DEFAULT_KEY_TEMPLATE, BundleLayout, open_store

from .._errors import UsageError
from ._base import Command, read_capped

__all__ = ["COMMAND", "STORE_ENV"]

STORE_ENV = "BUNDLE_STORE_BASE"
_MAX_SIGNATURE_FILE = 64 * 1024


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path, metavar="BUNDLE", help="the bundle.tar.zst to publish")
    parser.add_argument("--store", metavar="URL", help=f"file:///dir or s3://bucket/prefix (default: ${STORE_ENV})")
    parser.add_argument("--sig", type=Path, metavar="FILE", help="detached signature (default: BUNDLE.sig if present)")
    parser.add_argument("--trust-bundle", type=Path, metavar="PEM", help="refuse unless the signature verifies")
    parser.add_argument(
        "--key-template", default=DEFAULT_KEY_TEMPLATE, help=f"object key directory (default: {DEFAULT_KEY_TEMPLATE})"
    )
    parser.add_argument(
        "--key-field",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="fills {NAME} in --key-template (e.g. tenant=acme); repeatable",
    )


def _key_fields(items: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--key-field {item!r} is not NAME=VALUE")
        fields[name] = value
    return fields


def _run(args: argparse.Namespace) -> int:
    url = args.store or os.environ.get(STORE_ENV)
    if not url:
        raise UsageError(f"no store: pass --store URL or set {STORE_ENV}")
    try:
        layout = BundleLayout(args.key_template)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    fields = _key_fields(args.key_field)
    try:
        layout.prefix("0" * 64, **fields)  # template fields that do not fit: missing, unexpected or unsafe
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    bundle: Path = args.bundle
    data = read_capped(bundle)
    sig_path: Path | None = args.sig
    if sig_path is None:
        default = bundle.with_name(bundle.name + ".sig")
        sig_path = default if default.is_file() else None
    signature = read_capped(sig_path, max_bytes=_MAX_SIGNATURE_FILE, what="signature") if sig_path else None
    trust = TrustBundle.from_file(args.trust_bundle) if args.trust_bundle else None
    if trust is not None and signature is None:
        raise UsageError("--trust-bundle given but there is no signature (--sig)")

    async def publish() -> str:
        store = open_store(url, env=os.environ)
        try:
            return await publish_bundle(store, data, signature, layout=layout, key_context=fields, trust=trust)
        finally:
            await store.aclose()

    print(trio.run(publish))
    return 0


COMMAND = Command(name="publish", help="publish a bundle to a bundle store", configure=_configure, run=_run)
