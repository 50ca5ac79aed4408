"""The runner opens both sealed algorithms: HPKE (v2, what the gateway writes now) and v1 envelopes stored before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

import sealing
from runner_trio.capabilities import SecretEnvelopeError
from runner_trio.capabilities.secrets import SecretResolver
from runner_trio.engine import HostScope

# Made by sealing.seal before HPKE (commit 39dc6df), with the runner key pair that opens them.
V1: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "sealing" / "fixtures" / "v1_envelopes.json").read_text()
)


def scope(tenant: str = "tenant-a", extension: str = "ext-1") -> HostScope:
    return HostScope(tenant, extension, install_id="inst-1", deadline=trio.current_time() + 30)


async def test_v2_envelope_opens() -> None:
    private, public = sealing.generate_keypair()
    envelope = sealing.seal({"api_key": "v2-value"}, public, tenant_id="tenant-a", extension_id="ext-1")
    assert envelope["algorithm"] == "hpke-x25519-chacha20poly1305:v2"
    secrets = await SecretResolver(private).resolve(scope(), envelope)
    assert await secrets.get("api_key") == "v2-value"


async def test_v1_envelope_still_opens_with_the_same_key() -> None:
    assert V1["envelope"]["algorithm"] == "x25519-chacha20poly1305:v1"
    resolver = SecretResolver(V1["private_key_b64"])
    secrets = await resolver.resolve(scope(), V1["envelope"])
    assert await secrets.list_keys() == sorted(V1["secrets"])
    assert await secrets.get("API_KEY") == V1["secrets"]["API_KEY"]
    # New secrets sealed to the same public key open beside the old ones: no key rotation needed.
    fresh = sealing.seal({"API_KEY": "rotated"}, V1["public_key_b64"], tenant_id="tenant-a", extension_id="ext-1")
    assert await (await resolver.resolve(scope(), fresh)).get("API_KEY") == "rotated"


@pytest.mark.parametrize(("tenant", "extension"), [("tenant-b", "ext-1"), ("tenant-a", "ext-2")])
async def test_v1_envelope_for_another_install_fails(tenant: str, extension: str) -> None:
    with pytest.raises(SecretEnvelopeError) as info:
        await SecretResolver(V1["private_key_b64"]).resolve(scope(tenant, extension), V1["envelope"])
    assert info.value.code == "decrypt_failed"
