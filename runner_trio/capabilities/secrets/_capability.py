"""``alga:extension/secrets``: the invocation's secrets, behind ``cap:secrets.get``.

The values come from :attr:`Invocation.secrets`, a :class:`SecretsProvider` that :meth:`SecretsCapability.prepare`
opens per invocation from its secret envelope (with the :class:`SecretResolver` configured at start).
Not granted, or no provider: ``get`` answers ``denied`` and ``list-keys`` an empty list.
"""

from __future__ import annotations

import dataclasses
from typing import Final, final

from ...engine import (
    Err,
    Invocation,
    LinkerInstanceBuilder,
    Ok,
    SecretsProvider,
    call_backend,
    host_function,
)
from .._errors import HostCallError
from .._unit import CapabilityBase, InvocationInputs, denied, guest_error, interface_name
from ._resolver import SecretResolver

__all__ = ["SECRET_ERRORS", "SecretsCapability"]

SECRET_ERRORS: Final = frozenset({"missing", "denied", "expired", "internal"})


@final
class SecretsCapability(CapabilityBase):
    """``get(key) -> result<string, secret-error>``, ``list-keys() -> list<string>``.

    Args:
        resolver: opens secret envelopes; None leaves every invocation without secrets.
    """

    name = "secrets"
    grant: str | None = "cap:secrets.get"

    def __init__(self, resolver: SecretResolver | None = None) -> None:
        self.resolver = resolver

    async def prepare(self, invocation: Invocation, inputs: InvocationInputs) -> Invocation:
        """Open the invocation's envelope into its :attr:`Invocation.secrets` (none sent: left as it is).

        Raises:
            SecretEnvelopeError: the envelope cannot be opened (the runner answers ``secret_decrypt_failed``).
        """
        if inputs.secret_envelope is None or self.resolver is None:
            return invocation
        secrets = await self.resolver.resolve(invocation.host_scope, inputs.secret_envelope)
        return dataclasses.replace(invocation, secrets=secrets)

    def link(self, root: LinkerInstanceBuilder) -> None:
        with root.add_instance(interface_name(self.name)) as instance:
            instance.add_func("get", host_function(self.get))
            instance.add_func("list-keys", host_function(self.list_keys))

    def _provider(self, invocation: Invocation) -> SecretsProvider | None:
        if not invocation.allows(self.grant):
            return None
        return invocation.secrets

    def get(self, invocation: Invocation, key: str) -> Ok | Err:
        provider = self._provider(invocation)
        declared = invocation.context.secrets
        if provider is None or (declared is not None and key not in declared):
            # A bundle that declares its secrets reads only those (what the tenant admin consented to).
            return denied(invocation, Err("denied"))
        try:
            value = call_backend(invocation, provider.get, key)
        except HostCallError as exc:
            return guest_error(invocation, exc, SECRET_ERRORS)
        return Ok(str(value))

    def list_keys(self, invocation: Invocation) -> list[str]:
        provider = self._provider(invocation)
        if provider is None:
            return denied(invocation, [])
        try:
            keys = call_backend(invocation, provider.list_keys)
        except HostCallError:
            invocation.counters.add("host_errors")
            return []
        declared = invocation.context.secrets
        return [str(key) for key in keys if declared is None or str(key) in declared]
