"""The deployment mode both services share: ``development`` (the default) or ``production``, failing closed.

A service reads its mode from a setting of its own (``RUNNER_ENV``, ``GATEWAY_ENV``) with :func:`mode` and calls
:func:`enforce_mode` once its settings are read. Two rules hold in every mode, and a list of the service's own
ones in production:

- a listener on a non-loopback address needs the service's token (a service reachable from the network with
  no credential is open to that network), in development too;
- in production every :class:`Requirement` the service lists must be met (a service token, a trust bundle,
  no plaintext secrets, ...): start-up stops at the first one that is not, naming its variable.

What each service requires is its own business (its settings module); the mode, the loopback rule and the
message shape live here so both services say the same thing the same way.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, final

from ._errors import InvalidSetting

__all__ = ["DEVELOPMENT", "MODES", "PRODUCTION", "Mode", "Requirement", "enforce_mode", "is_loopback_bind", "mode"]

Mode = Literal["development", "production"]
DEVELOPMENT: Final[Mode] = "development"
PRODUCTION: Final[Mode] = "production"
MODES: Final[tuple[Mode, ...]] = (DEVELOPMENT, PRODUCTION)
_LOCAL_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def mode(raw: str) -> Mode:
    """A settings parser: ``development`` or ``production`` (any case)."""
    value = raw.strip().lower()
    if value == DEVELOPMENT:
        return DEVELOPMENT
    if value == PRODUCTION:
        return PRODUCTION
    raise ValueError(f"expected development or production, got {raw!r}")


def is_loopback_bind(bind: str) -> bool:
    """Whether a listen address (``HOST:PORT``, ``[V6]:PORT`` or ``unix:PATH``) is reachable from this machine only.

    A unix socket counts as local; a host name other than ``localhost`` does not (it may resolve anywhere), nor
    does ``0.0.0.0``/``::`` (every interface).
    """
    if bind.startswith("unix:"):
        return True
    host = bind.rpartition(":")[0].strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@final
@dataclass(frozen=True)
class Requirement:
    """One thing production mode insists on.

    Attributes:
        setting: the variable to name when it is not met.
        met: whether the settings meet it.
        message: what is wrong when it is not, e.g. ``"must be set: unsigned bundles would run"``.
    """

    setting: str
    met: bool
    message: str


def enforce_mode(
    current: Mode,
    *,
    mode_setting: str,
    bind: str,
    bind_setting: str,
    token_setting: str,
    has_token: bool,
    production: Iterable[Requirement] = (),
) -> None:
    """Refuse settings the mode does not allow.

    Args:
        current: the service's mode.
        mode_setting: the variable that set it (``RUNNER_ENV``), for the messages.
        bind: the listen address; ``bind_setting`` names its variable.
        token_setting: the variable of the service's token, named when a non-loopback bind has none.
        has_token: whether that token is set.
        production: the service's own requirements, checked in production mode only, in order.

    Raises:
        InvalidSetting: naming the token variable (a non-loopback bind without it) or the first unmet
            requirement's variable.
    """
    if not has_token and not is_loopback_bind(bind):
        raise InvalidSetting(
            token_setting,
            f"must be set when {bind_setting}={bind} listens beyond loopback (in development too: anyone on the "
            "network could call the service)",
        )
    if current != PRODUCTION:
        return
    for requirement in production:
        if not requirement.met:
            raise InvalidSetting(requirement.setting, f"{requirement.message} ({mode_setting}=production)")
