"""Errors of the command line (bundle problems arrive as ``bundles.BundleError`` and keep their codes).

The tree::

    ExtctlError          a command cannot do what was asked (exit 1, ``<code>: <message>`` on stderr)
    ├── CommandFailed    the operation was refused or failed for a reason outside the bundles tree
    └── UsageError       the arguments make no sense together (exit 2)
"""

from __future__ import annotations


class ExtctlError(Exception):
    """Base of the CLI's own errors; ``code`` is the first word of the stderr line."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class CommandFailed(ExtctlError):
    """The command was refused (exit 1)."""

    code = "failed"


class UsageError(ExtctlError):
    """Bad combination of arguments (exit 2)."""

    code = "usage"
