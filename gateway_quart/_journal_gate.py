"""The upgrade gate: a tenant may require a passing upgrade check before an install changes version.

With the tenant setting ``require_upgrade_check`` on, moving an install from bundle A to bundle B needs an
upgrade check of (A -> B) for that install, made within :data:`UPGRADE_CHECK_MAX_AGE`, whose newest result
passed: at least one recorded invocation replayed, none with ``calls_differ``, ``new_failure`` or a replay that
could not run (``response_differs`` alone passes: a changed answer is what an upgrade is for; the table shows
it). Otherwise the change is refused with 409 ``upgrade_check_required``.

:func:`ensure_upgrade_allowed` is called from the one place an install's version changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from ._errors import Conflict
from ._state import GatewayState
from .registry import Install, Version

UPGRADE_CHECK_MAX_AGE: Final = timedelta(hours=24)
REQUIRE_UPGRADE_CHECK: Final = "require_upgrade_check"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def ensure_upgrade_allowed(st: GatewayState, install: Install, to_version: Version, *,
                                 now: datetime | None = None) -> None:
    """Refuse moving ``install`` to ``to_version`` unless the tenant's gate is off or a recent check passed.

    Raises:
        Conflict: 409 ``upgrade_check_required`` naming both hashes (``from``, ``to``) and why.
    """
    from_hash, to_hash = install.version.content_hash, to_version.content_hash
    if from_hash == to_hash:
        return
    settings = await st.registry.get_tenant_settings(install.tenant_id)
    if not settings.get(REQUIRE_UPGRADE_CHECK):
        return
    since = _stamp((now or datetime.now(UTC)) - UPGRADE_CHECK_MAX_AGE)
    check = await st.registry.find_upgrade_check(install.tenant_id, install.extension_id, from_hash, to_hash,
                                                 since=since)
    if check is not None and check.passed:
        return
    reason = ("no upgrade check of these versions in the last 24 hours" if check is None
              else f"the newest upgrade check ({check.id}) did not pass")
    raise Conflict(
        "upgrade_check_required",
        f"this tenant requires a passing upgrade check before an upgrade: {reason}; run "
        f"`extctl upgrade-check {install.extension_id} --to sha256:{to_hash}`",
        extra={"from": f"sha256:{from_hash}", "to": f"sha256:{to_hash}",
               "check_id": None if check is None else check.id},
    )
