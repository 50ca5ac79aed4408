"""The secrets capability: ``alga:extension/secrets``, the invocation's secrets behind ``cap:secrets.get``.

One folder holds the whole unit:

* ``_resolver.py``: :class:`SecretResolver`, opening an invocation's secret envelope (sealed, inline or
  ``vault-transit``) into a :class:`SecretMap`, with a short cache;
* ``_capability.py``: the WIT glue (:class:`SecretsCapability`), whose ``prepare`` opens the envelope;
* ``_configure.py``: :func:`configure`, reading the private key and the Vault settings once.

Its errors are the capabilities' tree: :class:`HostCallError` (``missing``, ``denied``, ``expired``,
``internal``) for the guest, :class:`SecretEnvelopeError` (stable ``code``) for the runner.
"""

from __future__ import annotations

from .._errors import SecretEnvelopeError
from ._capability import SECRET_ERRORS, SecretsCapability
from ._configure import SecretsSettings, configure, defaults
from ._resolver import (
    DEFAULT_CACHE_TTL,
    DEFAULT_MAX_CACHE_ENTRIES,
    DEFAULT_VAULT_TIMEOUT,
    SecretMap,
    SecretResolver,
)

__all__ = [
    "DEFAULT_CACHE_TTL",
    "DEFAULT_MAX_CACHE_ENTRIES",
    "DEFAULT_VAULT_TIMEOUT",
    "SECRET_ERRORS",
    "SecretEnvelopeError",
    "SecretMap",
    "SecretResolver",
    "SecretsCapability",
    "SecretsSettings",
    "configure",
    "defaults",
]
