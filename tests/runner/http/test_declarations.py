"""A manifest's ``egress`` and ``secrets`` declarations bound what the bundle reaches (what a tenant admin consented
to).

Two real local servers, both on the runner's allowlist; the kitchen sink declares only the first one, and one of the
install's two secrets. The same component without declarations reaches both hosts and both secrets (the runner's
allowlist and the install's secrets alone apply, as before).
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from typing import Any

import pytest
import trio

from runner_trio import Settings
from tests.runner.capabilities._servers import Req, Resp, start_server

from .conftest import RunnerHandle, Shared, stage_sample, start_runner

JS_CAPS = ["cap:http.fetch", "cap:secrets.get"]
ENVELOPE = {"secret_envelope": {
    "algorithm": "inline/base64",
    "ciphertext_b64": base64.b64encode(json.dumps({"declared": "d-value", "other": "o-value"}).encode()).decode(),
}}


async def _hello(req: Req) -> Resp:
    return Resp(200, [("content-type", "text/plain")], b"hello")


async def _call(handle: RunnerHandle, digest: str, path: str, body: Any = None, **kwargs: Any) -> dict[str, Any]:
    raw = json.dumps(body).encode() if body is not None else None
    result = await handle.execute(digest, path, method="POST" if body is not None else "GET", body=raw,
                                  providers=JS_CAPS, extra=ENVELOPE, **kwargs)
    assert result["error"] is None, result
    return dict(json.loads(base64.b64decode(result["body_b64"])))


async def _fetch(handle: RunnerHandle, digest: str, url: str) -> dict[str, Any]:
    return await _call(handle, digest, "/http", {"url": url})


@pytest.mark.slow
async def test_declared_egress_and_secrets_bound_what_the_bundle_reaches(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared
) -> None:
    declared = await start_server(nursery, _hello)
    other = await start_server(nursery, _hello)
    handle = await start_runner(
        nursery,
        runner_settings(egress_allowlist=(f"127.0.0.1:{declared.port}", f"127.0.0.1:{other.port}"),
                        allow_plaintext_secrets=True),
        shared,
    )
    plain = await handle.publish_sample("js-kitchen-sink")
    src = stage_sample("js-kitchen-sink", shared.work)
    narrowed = shared.work / "stage-declared-egress"
    shutil.copytree(src, narrowed)
    manifest = json.loads((narrowed / "manifest.json").read_text())
    manifest["egress"] = [f"127.0.0.1:{declared.port}"]
    manifest["secrets"] = ["declared"]
    (narrowed / "manifest.json").write_text(json.dumps(manifest))
    digest = await handle.publish_dir(narrowed)

    assert (await _fetch(handle, digest, f"{declared.url}/x"))["bodyText"] == "hello"
    assert await _fetch(handle, digest, f"{other.url}/x") == {"error": "not-allowed"}
    # Without a declaration the runner's allowlist alone applies: both hosts answer.
    assert (await _fetch(handle, plain, f"{other.url}/x"))["bodyText"] == "hello"
    assert await _call(handle, digest, "/secrets", query={"key": "declared"}) == {"key": "declared",
                                                                                   "value": "d-value"}
    assert await _call(handle, digest, "/secrets", query={"key": "other"}) == {"error": "denied"}
    assert await _call(handle, digest, "/secrets/list") == {"keys": ["declared"]}
    assert await _call(handle, plain, "/secrets", query={"key": "other"}) == {"key": "other", "value": "o-value"}
    metrics = (await handle.client.get("/metrics")).text
    assert "runner_egress_denied_total 1.0" in metrics
    await handle.client.aclose()
    handle.shutdown.set()
