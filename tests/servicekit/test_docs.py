"""Settings tables in Markdown: generated from the code, and docs/configuration.md in step with both services."""

from __future__ import annotations

from pathlib import Path

import pytest

import gateway_quart
import runner_trio
from servicekit import Setting, SettingsTable, integer, render_settings_doc, resolve_table, table_refs
from servicekit.__main__ import main

CONFIGURATION_MD = Path(__file__).parents[2] / "docs" / "configuration.md"

TABLE = SettingsTable([Setting("DEMO_N", "n", integer(0), 3, "how many")], owned_prefixes=("DEMO_",))

DOC = """# Demo

Prose before.

<!-- settings-table: tests.servicekit.test_docs:TABLE (generated) -->
| stale |
<!-- end settings-table -->

Prose after.
"""

RENDERED = """# Demo

Prose before.

<!-- settings-table: tests.servicekit.test_docs:TABLE (generated) -->
| variable | default | what |
|---|---|---|
| `DEMO_N` | `3` | how many |
<!-- end settings-table -->

Prose after.
"""


def test_marked_tables_are_regenerated_and_the_prose_kept() -> None:
    assert table_refs(DOC) == ["tests.servicekit.test_docs:TABLE"]
    assert render_settings_doc(DOC) == RENDERED
    assert render_settings_doc(RENDERED) == RENDERED


def test_a_reference_must_name_a_table() -> None:
    assert resolve_table("tests.servicekit.test_docs:TABLE") is TABLE
    with pytest.raises(ValueError, match="not a SettingsTable"):
        resolve_table("tests.servicekit.test_docs:DOC")


def test_the_command_rewrites_or_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(DOC)
    assert main(["--check", str(doc)]) == 1
    assert doc.read_text() == DOC
    assert "is out of date" in capsys.readouterr().err
    assert main([str(doc)]) == 0
    assert doc.read_text() == RENDERED
    assert main(["--check", str(doc)]) == 0


def test_configuration_doc_matches_the_code() -> None:
    text = CONFIGURATION_MD.read_text()
    assert table_refs(text) == ["runner_trio:Settings.TABLE", "gateway_quart:Settings.TABLE"]
    assert render_settings_doc(text) == text, (
        "docs/configuration.md disagrees with the settings tables: run `python -m servicekit docs/configuration.md`"
    )
    for table in (runner_trio.Settings.TABLE, gateway_quart.Settings.TABLE):
        for prefix in table.owned_prefixes:
            assert f"`{prefix}*`" in text


@pytest.mark.parametrize("settings_class", [runner_trio.Settings, gateway_quart.Settings])
def test_documented_defaults_are_the_real_ones(settings_class: type) -> None:
    assert settings_class.TABLE.mismatched_defaults(settings_class) == []
