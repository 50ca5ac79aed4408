"""Errors of servicekit.

The tree::

    ServiceKitError                  base
    ├── InvalidSetting               an environment variable is unknown, missing or has an invalid value
    │                                (``.setting`` names it, ``.message`` says what is wrong)
    └── SchemaTooNew                 a PostgreSQL schema was migrated by a newer release (``_postgres.py``)

Each service translates :class:`InvalidSetting` into its own settings error at its boundary
(``runner_trio.ConfigError``, ``gateway_quart.SettingsError``), so callers of a service meet one tree.
"""

from __future__ import annotations

__all__ = ["InvalidSetting", "ServiceKitError"]


class ServiceKitError(Exception):
    """Base of servicekit's errors."""


class InvalidSetting(ServiceKitError):
    """An environment variable is unknown, missing or invalid."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message
