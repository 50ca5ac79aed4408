"""The subcommand registry: one module per command, each exporting ``COMMAND``.

To add a command (install, invoke, tail, …), write ``_commands/<name>.py`` with a ``COMMAND = Command(...)``
and list it in ``COMMANDS`` below.
"""

from __future__ import annotations

from . import (
    budgets,
    build,
    canary,
    consent,
    create_tenant,
    create_token,
    create_user,
    dev,
    diff,
    history,
    install,
    invoke,
    journal,
    keygen,
    manifest_schema,
    new,
    pack,
    privileges,
    publish,
    register,
    replay,
    rollback,
    seal,
    secrets_keygen,
    set_secrets,
    sign,
    tail,
    uninstall,
    upgrade,
    upgrade_check,
    usage,
    verify,
)
from ._base import Command
from ._gateway import ADMIN_TOKEN_ENV, DEFAULT_GATEWAY, GATEWAY_ENV, TOKEN_ENV

__all__ = ["ADMIN_TOKEN_ENV", "COMMANDS", "DEFAULT_GATEWAY", "GATEWAY_ENV", "TOKEN_ENV", "Command"]

COMMANDS: tuple[Command, ...] = (
    new.COMMAND,
    build.COMMAND,
    dev.COMMAND,
    keygen.COMMAND,
    pack.COMMAND,
    sign.COMMAND,
    verify.COMMAND,
    publish.COMMAND,
    manifest_schema.COMMAND,
    secrets_keygen.COMMAND,
    seal.COMMAND,
    register.COMMAND,
    create_tenant.COMMAND,
    create_user.COMMAND,
    create_token.COMMAND,
    install.COMMAND,
    upgrade.COMMAND,
    diff.COMMAND,
    consent.COMMAND,
    rollback.COMMAND,
    history.COMMAND,
    set_secrets.COMMAND,
    uninstall.COMMAND,
    invoke.COMMAND,
    tail.COMMAND,
    canary.COMMAND,
    journal.COMMAND,
    replay.COMMAND,
    upgrade_check.COMMAND,
    usage.COMMAND,
    budgets.COMMAND,
    privileges.COMMAND,
)
