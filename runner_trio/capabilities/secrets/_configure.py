"""The secrets unit's settings: the runner's private key and the Vault to open envelopes with."""

from __future__ import annotations

from typing import Protocol

from .._unit import Capability, Hooks
from ._capability import SecretsCapability
from ._resolver import SecretResolver

__all__ = ["SecretsSettings", "configure", "defaults"]


class SecretsSettings(Protocol):
    """What the secrets unit reads of the runner's settings."""

    @property
    def secrets_private_key(self) -> str | None: ...

    @property
    def vault_addr(self) -> str | None: ...

    @property
    def vault_token(self) -> str | None: ...

    @property
    def vault_namespace(self) -> str | None: ...

    @property
    def plaintext_secrets_allowed(self) -> bool: ...


def configure(settings: SecretsSettings, hooks: Hooks) -> tuple[Capability, ...]:
    """The secrets capability with a resolver for sealed, inline and ``vault-transit`` envelopes."""
    resolver = SecretResolver(
        settings.secrets_private_key,
        settings.vault_addr,
        settings.vault_token,
        vault_namespace=settings.vault_namespace,
        allow_plaintext=settings.plaintext_secrets_allowed,
    )
    return (SecretsCapability(resolver),)


def defaults() -> tuple[Capability, ...]:
    """What a Linker has when nothing is configured (no resolver: no invocation has secrets)."""
    return (SecretsCapability(),)
