"""With ``SIGNING_TRUST_BUNDLE`` the gateway refuses, at register and install, a bundle the runners would refuse
at invoke: the trap of a bundle signed with the author's own key is sprung where it can be fixed."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

import bundles
from bundles.store import FileStore
from gateway_quart import Settings, SettingsError

from ._helpers import _pack, manifest
from .conftest import GatewayFactory


async def _publish(store_dir: Path, data: bytes, private_pem: bytes | None) -> str:
    signature = bundles.sign_bundle(data, private_pem) if private_pem is not None else None
    async with FileStore(str(store_dir)) as store:
        return await bundles.publish_bundle(store, data, signature)


async def test_register_and_install_verify_the_signature_against_the_trust_bundle(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    trusted_private, trusted_public = bundles.generate_private_key()
    own_private, _ = bundles.generate_private_key()
    trust = bundles.TrustBundle.from_pem(trusted_public)
    (fingerprint,) = trust.fingerprints
    gateway = await make_gateway(trust_bundle=trust)
    await gateway.admin_post("/api/v1/tenants", {"id": "acme", "name": "Acme"}, expect=201)
    data = await trio.to_thread.run_sync(_pack, tmp_path / "tree", manifest())

    # Unsigned, then signed with the author's own key: refused, naming the keys the runners trust.
    for private_pem, reason in ((None, "has no signature"), (own_private, "does not verify")):
        content_hash = await _publish(gateway.store_dir, data, private_pem)
        resp = await gateway.client.post("/api/v1/extensions", json={"content_hash": content_hash},
                                         headers=gateway.admin)
        assert resp.status_code == 422, resp.text
        body = resp.json()
        assert (body["error"], body["trusted_keys"], body["content_hash"]) == (
            "signature_invalid", [fingerprint], content_hash)
        assert reason in body["message"]
        assert fingerprint in body["message"]

    # Re-signed with the trusted key and published again (the signature object is replaced): registered.
    content_hash = await _publish(gateway.store_dir, data, trusted_private)
    registered = await gateway.register(content_hash)
    assert registered["version"]["signature_status"] == "signed_verified"
    extension_id = registered["extension"]["id"]

    # The signature is checked again at install: replaced by an untrusted one since, the install is refused.
    await _publish(gateway.store_dir, data, own_private)
    resp = await gateway.client.post("/api/v1/tenants/acme/installs", json={"extension_id": extension_id},
                                     headers=gateway.admin)
    assert (resp.status_code, resp.json()["error"], resp.json()["trusted_keys"]) == (
        422, "signature_invalid", [fingerprint])
    await _publish(gateway.store_dir, data, trusted_private)
    install = await gateway.install("acme", extension_id)
    assert install["content_hash"] == content_hash


async def test_without_a_trust_bundle_a_signature_is_only_noted(make_gateway: GatewayFactory,
                                                                tmp_path: Path) -> None:
    gateway = await make_gateway()
    own_private, _ = bundles.generate_private_key()
    data = await trio.to_thread.run_sync(_pack, tmp_path / "tree", manifest())
    registered = await gateway.register(await _publish(gateway.store_dir, data, own_private))
    assert registered["version"]["signature_status"] == "signed_unverified"


def test_the_trust_bundle_setting_must_load(tmp_path: Path) -> None:
    _, public_pem = bundles.generate_private_key()
    (tmp_path / "trust.pem").write_bytes(public_pem)
    env = {"RUNNER_BASE_URL": "http://127.0.0.1:1"}
    settings = Settings.from_env({**env, "SIGNING_TRUST_BUNDLE": str(tmp_path / "trust.pem")})
    assert settings.trust_bundle is not None
    assert settings.trust_bundle.fingerprints == bundles.TrustBundle.from_pem(public_pem).fingerprints
    (tmp_path / "bad.pem").write_text("not a key")
    for path in (tmp_path / "bad.pem", tmp_path / "missing.pem"):
        with pytest.raises(SettingsError) as info:
            Settings.from_env({**env, "SIGNING_TRUST_BUNDLE": str(path)})
        assert info.value.setting == "SIGNING_TRUST_BUNDLE"
