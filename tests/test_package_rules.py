"""The package rules of docs/architecture.md that import-linter cannot state, and its configuration kept whole.

`lint-imports` (run by scripts/test) checks the layers, the "never imports" rows and private modules. It sees
modules only, so a private *name* taken from another package (``from cache import _helper``) is checked here,
from the source, as is that every top-level package is listed everywhere the rules need it.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict[str, Any]:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


PACKAGES: list[str] = _pyproject()["tool"]["importlinter"]["root_packages"]


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(path: Path) -> tuple[str, bool]:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, absolute module, imported name or None) for every import in the file."""
    module, is_package = _module_name(path)
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, target] if target else base)
            found.extend((node.lineno, target, alias.name) for alias in node.names)
    return found


def crossing_private_imports(packages: list[str], consumers: list[str] | None = None) -> list[str]:
    """Imports of a private module or a private name of one top-level package from another (from each of
    ``consumers``, by default the packages themselves)."""
    broken = []
    for package in consumers if consumers is not None else packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, target, name in _imports(path):
                top = target.split(".")[0]
                if top not in packages or top == package:
                    continue
                parts = target.split(".") + ([name] if name else [])
                if any(_is_private(part) for part in parts):
                    where = path.relative_to(ROOT)
                    broken.append(f"{where}:{line} imports {target}{'.' + name if name else ''}")
    return broken


def test_no_private_name_crosses_packages() -> None:
    assert crossing_private_imports(PACKAGES) == []


def test_benchmarks_use_only_public_names() -> None:
    # benchmarks/ is not shipped, so it is not a layer; it measures the packages through their public API.
    assert crossing_private_imports(PACKAGES, consumers=["benchmarks"]) == []


def test_the_check_sees_private_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for package, source in {
        "alpha": "from beta import _helper\nfrom beta.sub import ok\nfrom . import _own\n",
        "beta": "from alpha._impl import thing\nimport alpha\n",
    }.items():
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(source)
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert crossing_private_imports(["alpha", "beta"]) == [
        "alpha/__init__.py:1 imports beta._helper",
        "beta/__init__.py:1 imports alpha._impl.thing",
    ]


def test_every_package_is_under_the_rules() -> None:
    # A new top-level package is added to the wheel, to mypy and to the import contracts together.
    config = _pyproject()
    wheel = {pattern.rstrip("*") for pattern in config["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert set(PACKAGES) == wheel
    assert set(PACKAGES) == set(config["tool"]["mypy"]["packages"])
    layered = {
        name.strip()
        for contract in config["tool"]["importlinter"]["contracts"]
        if contract["type"] == "layers"
        for layer in contract["layers"]
        for name in layer.replace(":", "|").split("|")
    }
    assert set(PACKAGES) == layered
