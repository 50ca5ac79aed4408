"""``extctl new NAME [--template js|py] [--dir DIR]``: scaffold an extension folder.

Writes ``manifest.json``, the handler (``handler.js`` + ``package.json`` for componentize-js, ``app.py`` for
componentize-py), a UI under ``ui/`` on the host's iframe protocol (``ui/ext-iframe.js``), the WIT world under
``wit/``, a README and a ``.gitignore``. The templates are package data (``extctl/_templates/<template>/``
plus ``common/``); ``*.tmpl`` files have ``__NAME__`` replaced by NAME and lose the suffix. NAME is also the
extension id ``extctl dev`` registers, so it is label-shaped: lower-case letters, digits and single hyphens.
"""

from __future__ import annotations

import argparse
import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

from .._errors import UsageError
from ._base import Command

__all__ = ["COMMAND", "NAME_RE", "TEMPLATES", "scaffold"]

TEMPLATES: Final = ("js", "py")
NAME_RE: Final = re.compile(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,62}")
_PLACEHOLDER: Final = "__NAME__"
_SUFFIX: Final = ".tmpl"
#: Files whose stored name cannot be their real one (a dotfile is not package data everywhere).
_RENAMES: Final = {"gitignore": ".gitignore"}


def _walk(node: Traversable, rel: str = "") -> list[tuple[str, Traversable]]:
    out: list[tuple[str, Traversable]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        path = f"{rel}/{child.name}" if rel else child.name
        if child.is_dir():
            out.extend(_walk(child, path))
        elif child.name != "__init__.py" and not child.name.endswith(".pyc"):
            out.append((path, child))
    return out


def scaffold(name: str, template: str, dest: Path) -> list[Path]:
    """Write the ``template`` extension named ``name`` into ``dest`` (created; must be empty if it exists).

    Returns the files written, in order.

    Raises:
        UsageError: a bad name or template, or ``dest`` is not empty.
    """
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"name {name!r} must be lower-case letters, digits and single hyphens, starting with a "
                         "letter (it becomes the extension id)")
    if template not in TEMPLATES:
        raise UsageError(f"unknown template {template!r} (known: {', '.join(TEMPLATES)})")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest} exists and is not an empty directory")
    root = resources.files("extctl") / "_templates"
    files = dict(_walk(root / "common"))
    files.update(_walk(root / template))  # the template's own file wins over a common one of the same path
    written: list[Path] = []
    for rel, source in sorted(files.items()):
        parts = rel.split("/")
        parts[-1] = _RENAMES.get(parts[-1], parts[-1])
        target = dest.joinpath(*parts)
        data = source.read_bytes()
        if target.name.endswith(_SUFFIX):
            target = target.with_name(target.name.removesuffix(_SUFFIX))
            data = data.decode("utf-8").replace(_PLACEHOLDER, name).encode("utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(target)
    return written


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the extension's name and id (e.g. hello-world)")
    parser.add_argument("--template", choices=TEMPLATES, default="js",
                        help="js: componentize-js (JavaScript); py: componentize-py (Python). Default: js")
    parser.add_argument("--dir", type=Path, metavar="DIR", help="where to write it (default: ./NAME)")


def _run(args: argparse.Namespace) -> int:
    dest: Path = args.dir or Path(args.name)
    written = scaffold(args.name, args.template, dest)
    for path in written:
        print(path)
    print(f"\nNext: extctl dev {dest}   (against a running scripts/run: builds, installs, watches)")
    return 0


COMMAND = Command(name="new", help="scaffold an extension folder from a template (js or py)", configure=_configure,
                  run=_run)
