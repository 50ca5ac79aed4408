from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
import trio

import sealing
from runner_trio.capabilities import HostCallError, SecretEnvelopeError
from runner_trio.capabilities.secrets import SecretMap, SecretResolver
from runner_trio.engine import HostScope

from ._servers import Req, Resp, Server

Serve = Callable[..., Awaitable[Server]]

SECRETS = {"api_key": "sk-live-TOPSECRET", "db_password": "hunter2-VERYSECRET"}
VAULT_TOKEN = "vault-token-1"


def scope(tenant: str = "tenant-1", extension: str = "ext-1") -> HostScope:
    return HostScope(tenant, extension, install_id="inst-1", deadline=trio.current_time() + 30)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def keypair() -> tuple[str, str]:
    return sealing.generate_keypair()


def inline(values: dict[str, str], **extra: str) -> dict[str, str]:
    return {"ciphertext_b64": base64.b64encode(json.dumps(values).encode()).decode(), **extra}


async def test_sealed_envelope_opens_for_its_tenant_and_extension(keypair: tuple[str, str]) -> None:
    private, public = keypair
    envelope = sealing.seal(SECRETS, public, tenant_id="tenant-1", extension_id="ext-1")
    secrets = await SecretResolver(private).resolve(scope(), envelope)
    assert await secrets.get("api_key") == SECRETS["api_key"]
    assert await secrets.list_keys() == ["api_key", "db_password"]
    with pytest.raises(HostCallError) as info:
        await secrets.get("nope")
    assert info.value.variant == "missing"
    for text in (repr(secrets), str(secrets), str(info.value)):
        assert "TOPSECRET" not in text
        assert "VERYSECRET" not in text
    assert "2 values redacted" in repr(secrets)


@pytest.mark.parametrize("algorithm", [None, "inline/base64"])
async def test_inline_envelope(algorithm: str | None) -> None:
    envelope = inline(SECRETS) if algorithm is None else inline(SECRETS, algorithm=algorithm)
    secrets = await SecretResolver(None).resolve(scope(), envelope)
    assert await secrets.get("db_password") == SECRETS["db_password"]


async def test_no_envelope_and_empty_envelope_have_no_secrets() -> None:
    resolver = SecretResolver(None)
    for envelope in (None, {"ciphertext_b64": "", "algorithm": "x25519-chacha20poly1305:v1"}):
        secrets = await resolver.resolve(scope(), envelope)
        assert await secrets.list_keys() == []
        with pytest.raises(HostCallError) as info:
            await secrets.get("api_key")
        assert info.value.variant == "missing"


async def test_expired_envelope_answers_expired(keypair: tuple[str, str]) -> None:
    private, public = keypair
    clock = Clock()
    resolver = SecretResolver(private, wall_clock=clock)
    past = sealing.seal(
        SECRETS, public, tenant_id="tenant-1", extension_id="ext-1", expires_at=clock.now - timedelta(seconds=1)
    )
    secrets = await resolver.resolve(scope(), past)
    assert secrets.expired
    with pytest.raises(HostCallError) as info:
        await secrets.get("api_key")
    assert info.value.variant == "expired"
    assert await secrets.list_keys() == []
    assert resolver.opened == 0  # never decrypted

    soon = sealing.seal(
        SECRETS, public, tenant_id="tenant-1", extension_id="ext-1", expires_at=clock.now + timedelta(seconds=5)
    )
    secrets = await resolver.resolve(scope(), soon)
    assert await secrets.get("api_key") == SECRETS["api_key"]
    clock.now += timedelta(seconds=6)  # expires while the invocation runs
    with pytest.raises(HostCallError) as info:
        await secrets.get("api_key")
    assert info.value.variant == "expired"


@pytest.mark.parametrize("tamper", ["ciphertext", "tenant", "extension", "expiry", "key"])
async def test_tampered_or_misdirected_envelopes_fail(keypair: tuple[str, str], tamper: str) -> None:
    private, public = keypair
    later = datetime.now(UTC) + timedelta(hours=1)
    envelope = sealing.seal(SECRETS, public, tenant_id="tenant-1", extension_id="ext-1", expires_at=later)
    target = scope()
    if tamper == "ciphertext":
        raw = bytearray(base64.b64decode(envelope["ciphertext_b64"]))
        raw[-1] ^= 0x01
        envelope["ciphertext_b64"] = base64.b64encode(bytes(raw)).decode()
    elif tamper == "tenant":
        target = scope(tenant="tenant-2")
    elif tamper == "extension":
        target = scope(extension="ext-2")
    elif tamper == "expiry":
        envelope["expires_at"] = (later + timedelta(days=365)).isoformat()
    elif tamper == "key":
        private = sealing.generate_keypair()[0]
    with pytest.raises(SecretEnvelopeError) as info:
        await SecretResolver(private).resolve(target, envelope)
    assert info.value.code == "decrypt_failed"
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize(
    ("envelope", "code"),
    [
        ({"ciphertext_b64": "AAAA", "algorithm": "rot13:v1"}, "unsupported_algorithm"),
        ({"ciphertext_b64": "not base64!"}, "envelope_invalid"),
        ({"ciphertext_b64": base64.b64encode(b'{"a": 1}').decode()}, "envelope_invalid"),
        ({"ciphertext_b64": "AAAA", "expires_at": "tomorrow"}, "envelope_invalid"),
        ({"ciphertext_b64": "AAAA", "expires_at": "2030-01-01T00:00:00"}, "envelope_invalid"),
        ({"ciphertext_b64": "AAAA", "algorithm": "vault-transit:v1", "key_path": "k"}, "vault_not_configured"),
    ],
)
async def test_malformed_envelopes(envelope: dict[str, str], code: str) -> None:
    with pytest.raises(SecretEnvelopeError) as info:
        await SecretResolver(None).resolve(scope(), envelope)
    assert info.value.code == code


async def test_sealed_envelope_without_a_private_key(keypair: tuple[str, str]) -> None:
    envelope = sealing.seal(SECRETS, keypair[1], tenant_id="tenant-1", extension_id="ext-1")
    with pytest.raises(SecretEnvelopeError) as info:
        await SecretResolver(None).resolve(scope(), envelope)
    assert info.value.code == "invalid_key"


async def test_cache_reuses_for_30_seconds_and_never_past_expiry(
    keypair: tuple[str, str], autojump_clock: trio.testing.MockClock
) -> None:
    private, public = keypair
    clock = Clock()
    resolver = SecretResolver(private, wall_clock=clock)
    envelope = sealing.seal(SECRETS, public, tenant_id="tenant-1", extension_id="ext-1")
    await resolver.resolve(scope(), envelope)
    await resolver.resolve(scope(), envelope)
    assert resolver.opened == 1
    await resolver.resolve(scope(tenant="tenant-1", extension="ext-1"), dict(envelope))  # same envelope, same key
    assert resolver.opened == 1
    await trio.sleep(29)
    await resolver.resolve(scope(), envelope)
    assert resolver.opened == 1
    await trio.sleep(2)
    clock.now += timedelta(seconds=31)
    await resolver.resolve(scope(), envelope)
    assert resolver.opened == 2

    short = sealing.seal(
        SECRETS, public, tenant_id="tenant-1", extension_id="ext-1", expires_at=clock.now + timedelta(seconds=5)
    )
    await resolver.resolve(scope(), short)
    await trio.sleep(4)
    clock.now += timedelta(seconds=4)
    assert await (await resolver.resolve(scope(), short)).get("api_key") == SECRETS["api_key"]
    assert resolver.opened == 3
    await trio.sleep(2)
    clock.now += timedelta(seconds=2)
    assert (await resolver.resolve(scope(), short)).expired
    assert "VERYSECRET" not in repr(resolver)


def vault_standin(seen: list[Req]) -> Callable[[Req], Awaitable[Resp]]:
    async def handle(request: Req) -> Resp:
        seen.append(request)
        if request.header("x-vault-token") != VAULT_TOKEN:
            return Resp.json(403, {"errors": ["permission denied"]})
        if request.method != "POST" or not request.path.startswith(("/v1/transit/decrypt/", "/v1/kms/decrypt/")):
            return Resp.json(404, {"errors": []})
        ciphertext = request.json()["ciphertext"]
        if not ciphertext.startswith("vault:v1:"):
            return Resp.json(400, {"errors": ["invalid ciphertext"]})
        return Resp.json(200, {"data": {"plaintext": ciphertext.removeprefix("vault:v1:")}})

    return handle


def vault_envelope(values: dict[str, str], **extra: str) -> dict[str, str]:
    plaintext = base64.b64encode(json.dumps(values).encode()).decode()
    return {
        "ciphertext_b64": f"vault:v1:{plaintext}",
        "algorithm": "vault-transit:v1",
        "key_path": "tenant-1/ext-1",
        **extra,
    }


async def test_vault_transit(serve: Serve) -> None:
    seen: list[Req] = []
    server = await serve(vault_standin(seen))
    resolver = SecretResolver(None, server.url + "/", VAULT_TOKEN, vault_namespace="team-a")
    secrets = await resolver.resolve(scope(), vault_envelope(SECRETS))
    assert await secrets.get("api_key") == SECRETS["api_key"]
    assert seen[-1].path == "/v1/transit/decrypt/tenant-1/ext-1"
    assert seen[-1].header("x-vault-namespace") == "team-a"
    secrets = await resolver.resolve(scope(), vault_envelope({"x": "y"}, mount="kms"))
    assert await secrets.get("x") == "y"
    assert seen[-1].path == "/v1/kms/decrypt/tenant-1/ext-1"

    for envelope, code in [
        (vault_envelope(SECRETS, mount="missing-mount"), "vault_failed"),
        ({**vault_envelope(SECRETS), "ciphertext_b64": "garbage"}, "vault_failed"),
        ({**vault_envelope(SECRETS), "key_path": ""}, "envelope_invalid"),
    ]:
        with pytest.raises(SecretEnvelopeError) as info:
            await resolver.resolve(scope(), envelope)
        assert info.value.code == code

    wrong_token = SecretResolver(None, server.url, "wrong")
    with pytest.raises(SecretEnvelopeError) as info:
        await wrong_token.resolve(scope(), vault_envelope(SECRETS))
    assert info.value.code == "vault_failed"
    assert "TOPSECRET" not in str(info.value)


def test_secret_map_is_not_picklable() -> None:
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(SecretMap(SECRETS))
