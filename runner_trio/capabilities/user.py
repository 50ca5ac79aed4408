"""``alga:extension/user`` and ``user-v2``: the end user the invocation acts for.

Always granted (``cap:user.read``). Without a user on the invocation both answer ``not-available``.
"""

from __future__ import annotations

from typing import Final, final

from ..engine import Err, Invocation, LinkerInstanceBuilder, Ok, UserInfo, host_function, wit_record
from ._unit import Capability, CapabilityBase, Hooks, interface_name

__all__ = ["UserCapability", "UserV2Capability", "configure", "defaults"]

USER_GRANT: Final = "cap:user.read"
"""Always granted (so the capabilities' ``grant`` is None)."""


def configure(settings: object, hooks: Hooks) -> tuple[Capability, ...]:
    """Nothing to read: the user comes with each invocation. Both versions of the interface."""
    return (UserCapability(), UserV2Capability())


def defaults() -> tuple[Capability, ...]:
    """The capabilities as a Linker has them when nothing is configured (the same: they need no backend)."""
    return (UserCapability(), UserV2Capability())


def _common_fields(invocation: Invocation, user: UserInfo) -> dict[str, object]:
    return {
        "tenant_id": user.tenant_id if user.tenant_id is not None else invocation.context.tenant_id,
        "client_name": user.client_name,
        "user_id": user.user_id,
        "user_email": user.user_email,
        "user_name": user.user_name,
        "user_type": user.user_type,
    }


@final
class UserCapability(CapabilityBase):
    """``get-user() -> result<user-data, user-error>``."""

    name = "user"
    grant: str | None = None

    def link(self, root: LinkerInstanceBuilder) -> None:
        with root.add_instance(interface_name(self.name)) as instance:
            instance.add_func("get-user", host_function(self.get_user))

    @staticmethod
    def get_user(invocation: Invocation) -> Ok | Err:
        user = invocation.user
        if user is None:
            return Err("not-available")
        return Ok(wit_record(**_common_fields(invocation, user)))


@final
class UserV2Capability(CapabilityBase):
    """``get-user() -> result<user-data-v2, user-error>`` (adds ``client-id`` and ``additional-fields``)."""

    name = "user-v2"
    grant: str | None = None

    def link(self, root: LinkerInstanceBuilder) -> None:
        with root.add_instance(interface_name(self.name)) as instance:
            instance.add_func("get-user", host_function(self.get_user))

    @staticmethod
    def get_user(invocation: Invocation) -> Ok | Err:
        user = invocation.user
        if user is None:
            return Err("not-available")
        return Ok(
            wit_record(
                **_common_fields(invocation, user),
                client_id=user.client_id,
                additional_fields=[(str(key), str(value)) for key, value in user.additional_fields],
            )
        )
