"""The subcommand registry: one module per command, each exporting ``COMMAND``.

To add a command (install, invoke, tail, …), write ``_commands/<name>.py`` with a ``COMMAND = Command(...)``
and list it in ``COMMANDS`` below.
"""

from __future__ import annotations

from . import keygen, pack, publish, sign, verify
from ._base import Command

__all__ = ["COMMANDS", "Command"]

COMMANDS: tuple[Command, ...] = (keygen.COMMAND, pack.COMMAND, sign.COMMAND, verify.COMMAND, publish.COMMAND)
