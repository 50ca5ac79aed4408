"""Turning signature verification on cannot be bypassed by a warm cache (issue 14, item 10).

A bundle cached by a runner without a trust bundle (development: unsigned bundles run with a warning) must not
be served, from that cache, by a runner that has one. ``BundleService`` re-checks the signature record of
every cached entry against the current policy and refetches under it; this test fails if that check goes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import trio

import bundles
from runner_trio import Settings
from tests.runner.http.conftest import Shared, decode_body, start_runner


async def test_an_entry_cached_without_a_trust_bundle_is_refused_once_one_is_configured(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    open_runner = await start_runner(nursery, runner_settings(cache_root=cache), shared)
    digest = await open_runner.publish_wat("echo")  # unsigned
    answered = await open_runner.execute(digest, body=b"cached while no policy")
    assert decode_body(answered) == b"cached while no policy"
    assert any(cache.iterdir()), "the entry is on disk, shared with the next runner"
    open_runner.shutdown.set()

    _, public_pem = bundles.generate_private_key()
    trust = tmp_path / "trust.pem"
    trust.write_bytes(public_pem)
    strict = await start_runner(
        nursery, runner_settings(cache_root=cache, trust_bundle=trust, var_dir=tmp_path / "var-strict"), shared
    )
    try:
        refused = await strict.execute(digest, body=b"must not run")
        assert refused.get("body_b64") is None
        assert "signature" in (refused.get("error") or ""), refused
    finally:
        await strict.client.aclose()
        await open_runner.client.aclose()
        strict.shutdown.set()
