"""Typed settings tables: every variable a service reads, declared once with its parser, default and doc.

A service declares a :class:`SettingsTable` of :class:`Setting` rows and builds its frozen settings object
from :meth:`SettingsTable.read`. A row may accept other names for its variable (``aliases``, e.g. the names
another implementation of the same service reads); set together with different values they stop start-up.
The same rows render the service's section of ``docs/configuration.md`` (:meth:`SettingsTable.markdown`), so
the documentation cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, final

from ._errors import InvalidSetting

__all__ = ["REQUIRED", "Setting", "SettingsTable"]


@final
class _Required:
    """The default of a setting that has none: start-up stops when the variable is unset."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()


@final
@dataclass(frozen=True)
class Setting:
    """One environment variable.

    Attributes:
        env: the variable's name.
        attr: the attribute of the service's settings object it sets.
        parse: raw value -> typed value; raises ``ValueError`` with a message that does not name the variable.
            A parser returning ``None`` leaves the attribute at its default.
        default: what the attribute is when the variable is unset (documentation and a test check it against
            the settings class); ``None`` when the default is computed, :data:`REQUIRED` when there is none.
        doc: one line for ``docs/configuration.md``.
        aliases: other names the variable is read under (the same alias may serve several rows).
    """

    env: str
    attr: str
    parse: Callable[[str], Any]
    default: Any
    doc: str
    aliases: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def shown_default(self) -> str:
        """The default as the documentation shows it: ``""`` when there is none to show."""
        if self.default is None:
            return ""
        if self.default is REQUIRED:
            return "required"
        return str(self.default)


@final
class SettingsTable:
    """The settings of one service, and the namespaces it owns.

    Args:
        settings: the rows, in the order they are validated and documented.
        owned_prefixes: an unknown variable starting with one of these is refused (a typo stops start-up
            instead of silently running with a default).
        foreign: variables under an owned prefix that belong to another program.
        unknown_hint: said after "unknown setting"; by default the list of known names.
        blank_is_unset: a value that is empty or only whitespace counts as unset, and values reach the
            parsers stripped (otherwise every value present, blank or not, is parsed as it is).
    """

    def __init__(
        self,
        settings: Iterable[Setting],
        *,
        owned_prefixes: tuple[str, ...],
        foreign: Iterable[str] = (),
        unknown_hint: str | None = None,
        blank_is_unset: bool = False,
    ) -> None:
        self._settings = tuple(settings)
        self._by_env = {s.env: s for s in self._settings}
        if len(self._by_env) != len(self._settings) or len({s.attr for s in self._settings}) != len(self._settings):
            raise ValueError("a variable or an attribute appears twice in the settings table")
        self._aliases = frozenset(alias for s in self._settings for alias in s.aliases)
        if self._aliases & self._by_env.keys():
            raise ValueError("an alias is also the name of a setting")
        self._names = frozenset(self._by_env) | self._aliases
        self._owned_prefixes = owned_prefixes
        self._foreign = frozenset(foreign)
        self._unknown_hint = unknown_hint
        self._blank_is_unset = blank_is_unset

    @property
    def settings(self) -> tuple[Setting, ...]:
        return self._settings

    @property
    def names(self) -> frozenset[str]:
        """Every variable the table reads, aliases included."""
        return self._names

    @property
    def owned_prefixes(self) -> tuple[str, ...]:
        return self._owned_prefixes

    def __getitem__(self, env: str) -> Setting:
        return self._by_env[env]

    def read(self, environ: Mapping[str, str]) -> dict[str, Any]:
        """Parse ``environ``: ``{attr: value}`` for every variable that is set (and parses to a value).

        Raises:
            InvalidSetting: naming the first unknown variable (in name order) of an owned namespace, else
                the first missing or invalid one (in table order), or a variable and its alias set to
                different values (naming both).
        """
        for name in sorted(environ):
            if name.startswith(self._owned_prefixes) and name not in self._names and name not in self._foreign:
                hint = self._unknown_hint or f"known: {', '.join(sorted(self._by_env))}"
                raise InvalidSetting(name, f"unknown setting ({hint})")
        values: dict[str, Any] = {}
        for setting in self._settings:
            given = [(name, raw) for name in (setting.env, *setting.aliases)
                     if (raw := self._raw(environ, name)) is not None]
            if not given:
                if setting.required:
                    raise InvalidSetting(setting.env, f"is required ({setting.doc})")
                continue
            name, raw = given[0]
            for other, other_raw in given[1:]:
                if other_raw.strip() != raw.strip():
                    raise InvalidSetting(name, f"{name} and {other} are both set, to different values")
            try:
                value = setting.parse(raw)
            except ValueError as exc:
                raise InvalidSetting(name, str(exc)) from None
            if value is not None:
                values[setting.attr] = value
        return values

    def _raw(self, environ: Mapping[str, str], name: str) -> str | None:
        raw = environ.get(name)
        if raw is not None and self._blank_is_unset:
            raw = raw.strip() or None
        return raw

    def rows(self) -> list[tuple[str, str, str]]:
        """(variable, default, doc) for every setting, in table order."""
        return [(s.env, s.shown_default, s.doc) for s in self._settings]

    def markdown(self) -> str:
        """The table as the Markdown table of ``docs/configuration.md`` (ends with a newline)."""
        lines = ["| variable | default | what |", "|---|---|---|"]
        for setting in self._settings:
            doc = setting.doc.replace("|", "\\|")
            if setting.aliases:
                doc += f" (also read as {', '.join(f'`{alias}`' for alias in setting.aliases)})"
            lines.append(f"| `{setting.env}` | {_default_cell(setting)} | {doc} |")
        return "\n".join(lines) + "\n"

    def mismatched_defaults(self, settings_class: type[Any]) -> list[str]:
        """Variables whose documented default differs from ``settings_class``'s field default.

        Settings documented without a default (``None``) or as required are not compared.
        """
        fields = {f.name: f for f in dataclasses.fields(settings_class)}
        mismatched = []
        for setting in self._settings:
            if setting.default is None or setting.required:
                continue
            field = fields.get(setting.attr)
            if field is None:
                mismatched.append(setting.env)
                continue
            if field.default is not dataclasses.MISSING:
                actual = field.default
            elif field.default_factory is not dataclasses.MISSING:
                actual = field.default_factory()
            else:
                actual = REQUIRED
            if actual != setting.default:
                mismatched.append(setting.env)
        return mismatched


def _default_cell(setting: Setting) -> str:
    if setting.required:
        return setting.shown_default
    return f"`{setting.shown_default}`" if setting.shown_default else "—"
