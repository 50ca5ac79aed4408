"""``RUNNER_ALLOW_PLAINTEXT_SECRETS=false`` (production's default) over ``/v1/execute``: an ``inline/base64``
envelope is refused before the guest runs, and its values appear nowhere in the answer."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import trio

from runner_trio import Settings

from .conftest import Shared, start_runner

ENVELOPE = {"secret_envelope": {
    "algorithm": "inline/base64",
    "ciphertext_b64": base64.b64encode(json.dumps({"api-key": "sk-TOPSECRET"}).encode()).decode(),
}}


async def test_a_plaintext_envelope_is_refused_where_plaintext_is_not_allowed(
    nursery: trio.Nursery, runner_settings: Callable[..., Settings], shared: Shared
) -> None:
    for allowed, expected in ((False, "secret_decrypt_failed: plaintext_refused"), (True, None)):
        handle = await start_runner(nursery, runner_settings(allow_plaintext_secrets=allowed), shared)
        try:
            digest = await handle.publish_wat("caps", capabilities=["cap:secrets.get"])
            result = await handle.execute(digest, providers=["cap:secrets.get"], extra=ENVELOPE)
            assert result["error"] == expected, result
            if allowed:
                assert result["headers"]["secrets.get.value"] == "sk-TOPSECRET"
            else:
                assert result["status"] == 500
                assert "TOPSECRET" not in json.dumps(result)
        finally:
            await handle.client.aclose()
            handle.shutdown.set()
