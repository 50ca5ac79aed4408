"""``alga:extension/secrets``: the invocation's secrets, behind ``cap:secrets.get``.

The values come from :attr:`Invocation.secrets` (a :class:`SecretsProvider` the runner opens per request).
Not granted, or no provider: ``get`` answers ``denied`` and ``list-keys`` an empty list.
"""

from __future__ import annotations

from typing import Final, final

from ._base import (
    Err,
    LinkerInstanceBuilder,
    Ok,
    call_backend,
    denied,
    guest_error,
    host_function,
    interface_name,
)
from ._host_errors import HostCallError
from ._invocation import Invocation, SecretsProvider

__all__ = ["SECRET_ERRORS", "SecretsCapability", "SecretsProvider"]

SECRET_ERRORS: Final = frozenset({"missing", "denied", "expired", "internal"})


@final
class SecretsCapability:
    """``get(key) -> result<string, secret-error>``, ``list-keys() -> list<string>``."""

    name = "secrets"
    grant: str | None = "cap:secrets.get"

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
        if provider is None:
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
        return [str(key) for key in keys]
