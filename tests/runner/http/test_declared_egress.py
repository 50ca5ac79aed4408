"""A manifest's ``egress`` list narrows the runner's allowlist for that bundle (what a tenant admin consented to).

Two real local servers, both on the runner's allowlist; the kitchen sink declares only the first one. The same
component without the declaration reaches both (the runner's allowlist alone applies, as before).
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

JS_CAPS = ["cap:http.fetch"]


async def _hello(req: Req) -> Resp:
    return Resp(200, [("content-type", "text/plain")], b"hello")


async def _fetch(handle: RunnerHandle, digest: str, url: str) -> dict[str, Any]:
    result = await handle.execute(digest, "/http", method="POST", body=json.dumps({"url": url}).encode(),
                                  providers=JS_CAPS)
    assert result["error"] is None, result
    return dict(json.loads(base64.b64decode(result["body_b64"])))


@pytest.mark.slow
async def test_a_declared_egress_list_narrows_the_allowlist(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared
) -> None:
    declared = await start_server(nursery, _hello)
    other = await start_server(nursery, _hello)
    handle = await start_runner(
        nursery,
        runner_settings(egress_allowlist=(f"127.0.0.1:{declared.port}", f"127.0.0.1:{other.port}")),
        shared,
    )
    plain = await handle.publish_sample("js-kitchen-sink")
    src = stage_sample("js-kitchen-sink", shared.work)
    narrowed = shared.work / "stage-declared-egress"
    shutil.copytree(src, narrowed)
    manifest = json.loads((narrowed / "manifest.json").read_text())
    manifest["egress"] = [f"127.0.0.1:{declared.port}"]
    (narrowed / "manifest.json").write_text(json.dumps(manifest))
    digest = await handle.publish_dir(narrowed)

    assert (await _fetch(handle, digest, f"{declared.url}/x"))["bodyText"] == "hello"
    assert await _fetch(handle, digest, f"{other.url}/x") == {"error": "not-allowed"}
    # Without a declaration the runner's allowlist alone applies: both hosts answer.
    assert (await _fetch(handle, plain, f"{other.url}/x"))["bodyText"] == "hello"
    metrics = (await handle.client.get("/metrics")).text
    assert "runner_egress_denied_total 1.0" in metrics
    await handle.client.aclose()
    handle.shutdown.set()
