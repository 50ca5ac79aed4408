"""Reading a bundle: manifest, member index and the component entry, from a validated archive."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from ._archive import DEFAULT_LIMITS, ArchiveLimits, MemberInfo, MemberVisitor, scan_archive
from ._errors import ArchiveError, EntryError, ManifestError
from ._manifest import DEFAULT_ENTRY_CANDIDATES, Manifest, parse_manifest

__all__ = ["MANIFEST_NAME", "BundleContents", "check_component", "read_bundle", "read_member", "resolve_entry"]

MANIFEST_NAME: Final = "manifest.json"
_COMPONENT_PREAMBLE: Final = b"\x00asm\x0d\x00\x01\x00"
_CORE_MODULE_PREAMBLE: Final = b"\x00asm\x01\x00\x00\x00"


@dataclass(frozen=True, eq=False)
class BundleContents:
    """What :func:`read_bundle` learned from a valid bundle."""

    content_hash: str
    manifest: Manifest
    manifest_bytes: bytes
    members: Mapping[str, MemberInfo]
    directories: frozenset[str]
    entry_path: str
    entry: bytes


def check_component(data: bytes, *, name: str | None = None) -> None:
    """Raise :class:`EntryError` unless ``data`` is a binary WebAssembly *component*.

    A core module, WAT text or anything else is refused: the runner links components only.
    """
    if data.startswith(_COMPONENT_PREAMBLE):
        return
    if data.startswith(_CORE_MODULE_PREAMBLE):
        reason = "is a core WebAssembly module, not a component"
    elif data.startswith(b"\x00asm"):
        reason = f"is WebAssembly with unsupported version/layer {data[4:8].hex()} (component is 0d000100)"
    elif data.lstrip()[:1] in (b"(", b";"):
        reason = "is WebAssembly text (WAT), not a binary component"
    else:
        reason = "is not a WebAssembly component (no \\0asm preamble)"
    raise EntryError(reason, member=name)


def resolve_entry(manifest: Manifest, files: Mapping[str, object]) -> str:
    """The component path: manifest ``entry`` if set, else ``dist/main.wasm``, else ``entry.wasm``."""
    if manifest.entry is not None:
        if manifest.entry not in files:
            raise EntryError("component named by manifest 'entry' is not a file in the bundle", member=manifest.entry)
        return manifest.entry
    for candidate in DEFAULT_ENTRY_CANDIDATES:
        if candidate in files:
            return candidate
    raise EntryError(f"no component entry: the bundle has none of {', '.join(DEFAULT_ENTRY_CANDIDATES)}")


def read_bundle(data: bytes, *, limits: ArchiveLimits = DEFAULT_LIMITS) -> BundleContents:
    """Validate a whole bundle and return its manifest, member index and component entry.

    Raises:
        ArchiveError: hostile or malformed archive (``EntryError`` for a missing/invalid component).
        ManifestError: manifest.json missing or invalid.
    """

    def wanted(name: str, size: int) -> bool:
        if name == MANIFEST_NAME and size > limits.max_manifest_bytes:
            raise ManifestError("", f"{MANIFEST_NAME} is {size} bytes, more than {limits.max_manifest_bytes}")
        return name == MANIFEST_NAME or name in DEFAULT_ENTRY_CANDIDATES

    collector = _Collector(wanted)
    files, dirs = scan_archive(data, collector, limits=limits)
    if MANIFEST_NAME not in collector.captured:
        raise ManifestError("", f"{MANIFEST_NAME} is missing from the bundle root")
    manifest_bytes = collector.captured[MANIFEST_NAME]
    manifest = parse_manifest(manifest_bytes)
    entry_path = resolve_entry(manifest, files)
    # The manifest may come after the component in archive order; then read it in a second pass.
    entry = collector.captured.get(entry_path)
    if entry is None:
        entry = read_member(data, entry_path, limits=limits)
    check_component(entry, name=entry_path)
    return BundleContents(
        content_hash="sha256:" + hashlib.sha256(data).hexdigest(),
        manifest=manifest,
        manifest_bytes=manifest_bytes,
        members=files,
        directories=frozenset(dirs),
        entry_path=entry_path,
        entry=entry,
    )


def read_member(data: bytes, name: str, *, limits: ArchiveLimits = DEFAULT_LIMITS) -> bytes:
    """Return the content of the regular file ``name`` (the whole archive is still validated).

    Raises:
        ArchiveError: hostile/malformed archive, or no regular file called ``name`` in it.
    """
    collector = _Collector(lambda n, _size: n == name)
    scan_archive(data, collector, limits=limits)
    if name not in collector.captured:
        raise ArchiveError("no such file in the archive", member=name)
    return collector.captured[name]


class _Collector(MemberVisitor):
    """Keeps the full content of the files ``want`` selects."""

    def __init__(self, want: Callable[[str, int], bool]) -> None:
        self._want = want
        self._parts: list[bytes] = []
        self.captured: dict[str, bytes] = {}

    def begin_file(self, name: str, size: int) -> bool:
        self._parts = []
        return self._want(name, size)

    def chunk(self, data: bytes) -> None:
        self._parts.append(data)

    def end_file(self, info: MemberInfo) -> None:
        self.captured[info.name] = b"".join(self._parts)
        self._parts = []
