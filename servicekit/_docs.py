"""Settings tables in Markdown documents, generated from the code.

A document marks where a table goes and names the table it shows::

    <!-- settings-table: runner_trio:Settings.TABLE (generated: python -m servicekit docs/configuration.md) -->
    | variable | default | what |
    ...
    <!-- end settings-table -->

:func:`render_settings_doc` replaces what stands between the markers with :meth:`SettingsTable.markdown`
of the named table and leaves the prose around it alone. The reference is imported by name, so servicekit
itself depends on no service.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Final

from ._settings import SettingsTable

__all__ = ["render_settings_doc", "resolve_table", "table_refs"]

_BLOCK: Final = re.compile(
    r"(?P<open><!-- settings-table: (?P<ref>[\w.]+:[\w.]+)[^\n]*-->\n)"
    r"(?P<body>.*?)"
    r"(?P<close><!-- end settings-table -->)",
    re.DOTALL,
)


def resolve_table(ref: str) -> SettingsTable:
    """The table named ``package.module:attribute.path``.

    Raises:
        ValueError: the reference does not name a :class:`SettingsTable`.
    """
    module_name, _, attr_path = ref.partition(":")
    target: object = importlib.import_module(module_name)
    for attr in attr_path.split("."):
        target = getattr(target, attr)
    if not isinstance(target, SettingsTable):
        raise ValueError(f"{ref} is not a SettingsTable")
    return target


def render_settings_doc(text: str, resolve: Callable[[str], SettingsTable] = resolve_table) -> str:
    """``text`` with every marked settings table regenerated from the code."""
    return _BLOCK.sub(lambda m: m["open"] + resolve(m["ref"]).markdown() + m["close"], text)


def table_refs(text: str) -> list[str]:
    """The table references marked in ``text``, in order."""
    return [m["ref"] for m in _BLOCK.finditer(text)]
