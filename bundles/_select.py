"""Which files of a source tree ``pack_directory`` packs: ``.extignore``, the defaults, the manifest's ``assets``.

* Never packed unless the author's ``.extignore`` re-includes them (``!node_modules/``): :data:`DEFAULT_IGNORES`
  (``.git``, ``__pycache__/``, ``node_modules/``) and the ``.extignore`` file itself.
* ``.extignore`` at the tree's root, in gitignore syntax (matched by ``pathspec``'s ``GitIgnoreSpec``, the
  implementation black, mypy and hatch use), excludes more.
* When the manifest lists ``assets`` (paths or globs relative to the bundle root, gitignore-style wildcards,
  ``**`` included; a directory stands for everything under it), only those are packed, plus what the bundle
  cannot do without: ``manifest.json``, the component entry, ``ui.entry`` and the ``precompiled`` artifacts.
  Those required files are packed even when an ignore rule matches them (``dist/`` is in many ``.gitignore``
  files that authors copy).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pathspec

from ._errors import ArchiveError
from ._manifest import DEFAULT_ENTRY_CANDIDATES, Manifest, parse_manifest

__all__ = ["DEFAULT_IGNORES", "IGNORE_FILE", "PackSelection"]

IGNORE_FILE: Final = ".extignore"
#: Patterns applied before the author's ``.extignore`` (which can re-include with ``!``).
DEFAULT_IGNORES: Final[tuple[str, ...]] = (".git", "__pycache__/", "node_modules/", f"/{IGNORE_FILE}")
_MAX_IGNORE_FILE_BYTES: Final = 256 * 1024
_MAX_MANIFEST_READ: Final = 1024 * 1024


@dataclass(frozen=True)
class PackSelection:
    """The rules for one source tree, asked about each path (POSIX, relative to the root)."""

    ignore: pathspec.GitIgnoreSpec
    assets: pathspec.GitIgnoreSpec | None
    required: frozenset[str]

    @classmethod
    def for_tree(cls, root: Path) -> PackSelection:
        """Read ``root/.extignore`` and ``root/manifest.json`` (when present) into the rules.

        Raises:
            ArchiveError: ``.extignore`` is unreadable, too large or not UTF-8.
            ManifestError: ``manifest.json`` exists and is invalid.
        """
        lines = list(DEFAULT_IGNORES)
        ignore_path = root / IGNORE_FILE
        if ignore_path.is_file():
            with ignore_path.open("rb") as handle:
                raw = handle.read(_MAX_IGNORE_FILE_BYTES + 1)
            if len(raw) > _MAX_IGNORE_FILE_BYTES:
                raise ArchiveError(f"{IGNORE_FILE} is larger than {_MAX_IGNORE_FILE_BYTES} bytes")
            try:
                lines.extend(raw.decode("utf-8-sig").splitlines())
            except UnicodeDecodeError:
                raise ArchiveError(f"{IGNORE_FILE} is not UTF-8 text") from None
        manifest = _manifest(root)
        assets = None
        required: set[str] = {"manifest.json"}
        if manifest is not None:
            required |= _required_paths(manifest)
            if manifest.assets is not None:
                # Anchored at the bundle root: assets name paths inside the bundle, not names anywhere.
                assets = pathspec.GitIgnoreSpec.from_lines(_anchored(manifest.assets))
        return cls(ignore=pathspec.GitIgnoreSpec.from_lines(lines), assets=assets, required=frozenset(required))

    def ignored(self, rel: str, *, is_dir: bool) -> bool:
        """Whether an ignore rule drops ``rel`` (a directory: with everything under it), required files aside."""
        if is_dir:
            return not any(path.startswith(rel + "/") for path in self.required) and self.ignore.match_file(rel + "/")
        return rel not in self.required and self.ignore.match_file(rel)

    def selected(self, rel: str) -> bool:
        """Whether the file ``rel``, not ignored, is packed: always without ``assets``; with, when listed."""
        return self.assets is None or rel in self.required or self.assets.match_file(rel)

    @property
    def keeps_empty_dirs(self) -> bool:
        """Without ``assets`` the tree is packed as it is (empty directories too); with them, only what matched."""
        return self.assets is None


def _manifest(root: Path) -> Manifest | None:
    path = root / "manifest.json"
    if not path.is_file():
        return None  # read_bundle names the missing manifest after packing
    with path.open("rb") as handle:
        raw = handle.read(_MAX_MANIFEST_READ + 1)
    if len(raw) > _MAX_MANIFEST_READ:
        return None  # too large: read_bundle refuses it with the archive limits' message
    return parse_manifest(raw)


def _required_paths(manifest: Manifest) -> set[str]:
    paths = {manifest.entry} if manifest.entry is not None else set(DEFAULT_ENTRY_CANDIDATES)
    if manifest.ui is not None:
        paths.add(manifest.ui.entry)
    paths.update(manifest.precompiled.values())
    return paths


def _anchored(patterns: Iterable[str]) -> list[str]:
    return ["/" + pattern for pattern in patterns]
