"""Deterministic packing of a bundle directory, and content hashes.

The same tree always packs to the same bytes (hence the same content hash), whatever the files' mtimes,
owners or permission bits: members are sorted, their metadata fixed, and the zstd parameters pinned.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import tarfile
from pathlib import Path
from typing import Final

import zstandard

from ._archive import DEFAULT_LIMITS, ArchiveLimits, normalize_member_name
from ._errors import ArchiveError, ContentHashError, IntegrityError
from ._read import read_bundle
from ._select import PackSelection

__all__ = [
    "DEFAULT_COMPRESSION_LEVEL",
    "content_hash",
    "is_canonical_hex",
    "pack_directory",
    "parse_content_hash",
    "verify_content_hash",
]

#: zstd level used by ``extctl pack``; changing it changes every content hash, so it is part of the format.
DEFAULT_COMPRESSION_LEVEL: Final = 19
_FILE_MODE: Final = 0o644
_DIR_MODE: Final = 0o755
# The one content-hash grammar of the code base (``contract`` re-exports it; the store's key checks use
# :func:`is_canonical_hex`). ``cache`` keeps a copy of the canonical form: it imports no package of ours.
_HASH_RE: Final = re.compile(r"(?:sha256:)?([0-9a-fA-F]{64})")


def content_hash(data: bytes) -> str:
    """``sha256:<hex>`` of the compressed bundle bytes: the bundle's identity everywhere."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parse_content_hash(value: str) -> str:
    """Accept ``sha256:<64 hex>`` or 64 bare hex digits (any case); return the lower-case bare hex.

    Raises:
        ContentHashError: anything else (also a ``ValueError``).
    """
    match = _HASH_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        shown = value if isinstance(value, str) and len(value) <= 80 else f"{str(value)[:80]}…"
        raise ContentHashError(f"content hash {shown!r} is not 'sha256:' followed by 64 hex digits")
    return match.group(1).lower()


def is_canonical_hex(value: object) -> bool:
    """Whether ``value`` is a content hash in its canonical form: 64 lower-case hex digits, no prefix.

    That is what :func:`parse_content_hash` returns, and how object keys and cache directories name a bundle.
    """
    match = _HASH_RE.fullmatch(value) if isinstance(value, str) else None
    return match is not None and match.group(0) == match.group(1).lower()


def verify_content_hash(data: bytes, expected: str) -> str:
    """Check that ``data`` hashes to ``expected`` (either accepted form); return the bare hex.

    Raises:
        ContentHashError: ``expected`` is malformed.
        IntegrityError: the bytes hash to something else.
    """
    want = parse_content_hash(expected)
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise IntegrityError(f"bundle bytes hash to sha256:{got}, expected sha256:{want}")
    return want


def pack_directory(
    src: Path, *, level: int = DEFAULT_COMPRESSION_LEVEL, limits: ArchiveLimits = DEFAULT_LIMITS
) -> bytes:
    """Pack ``src`` into a deterministic ``bundle.tar.zst`` and validate the result as a bundle.

    What is packed follows :class:`~bundles._select.PackSelection`: ``.git``, ``__pycache__`` and
    ``node_modules`` are skipped by default, ``.extignore`` (gitignore syntax) skips more, and a manifest
    with ``assets`` packs only those plus the manifest, entry, UI entry and precompiled artifacts.
    Only regular files and directories are packed; a symlink, socket, fifo or device among the packed paths
    is an error rather than something silently skipped or followed.

    Raises:
        ArchiveError: unsupported file type or name in ``src``, or the tree exceeds ``limits``.
        ManifestError / EntryError: the packed bundle would be refused by :func:`read_bundle`.
    """
    root = Path(src)
    if not root.is_dir():
        raise ArchiveError(f"{root} is not a directory")
    entries = _walk(root, limits, PackSelection.for_tree(root))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for rel, is_dir in entries:
            info = tarfile.TarInfo(rel)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if is_dir:
                info.type = tarfile.DIRTYPE
                info.mode = _DIR_MODE
                tar.addfile(info)
                continue
            info.type = tarfile.REGTYPE
            info.mode = _FILE_MODE
            path = root / rel
            with _open_regular(path) as handle:
                info.size = os.fstat(handle.fileno()).st_size
                tar.addfile(info, handle)
    tar_bytes = buffer.getvalue()
    if len(tar_bytes) > limits.max_unpacked_bytes:
        raise ArchiveError(f"packed tree is {len(tar_bytes)} bytes, more than max_unpacked_bytes")
    # threads=0 (single-threaded) and fixed flags: multi-threaded zstd frames differ from single-threaded ones.
    compressor = zstandard.ZstdCompressor(
        level=level, threads=0, write_checksum=True, write_content_size=True, write_dict_id=False
    )
    data: bytes = compressor.compress(tar_bytes)
    read_bundle(data, limits=limits)
    return data


def _walk(root: Path, limits: ArchiveLimits, selection: PackSelection) -> list[tuple[str, bool]]:
    """The (relative posix path, is_dir) under ``root`` that ``selection`` wants, parents before children,
    sorted by segments."""
    found: list[tuple[tuple[str, ...], bool]] = []
    stack: list[tuple[Path, tuple[str, ...]]] = [(root, ())]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                parts = (*prefix, entry.name)
                rel = "/".join(parts)
                mode = entry.stat(follow_symlinks=False).st_mode
                if selection.ignored(rel, is_dir=stat.S_ISDIR(mode)):
                    continue
                if stat.S_ISLNK(mode):
                    raise ArchiveError("symbolic links cannot be packed", member=rel)
                if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                    raise ArchiveError("only regular files and directories can be packed", member=rel)
                if normalize_member_name(rel, max_name_bytes=limits.max_name_bytes) != rel:
                    raise ArchiveError("name cannot be packed", member=rel)
                if stat.S_ISDIR(mode) or selection.selected(rel):
                    found.append((parts, stat.S_ISDIR(mode)))
                if len(found) > limits.max_files:
                    raise ArchiveError(f"more than max_files={limits.max_files} entries under {root}")
                if stat.S_ISDIR(mode):
                    stack.append((Path(entry.path), parts))
    if not selection.keeps_empty_dirs:
        # Only the directories that lead to a packed file.
        parents = {parts[:i] for parts, is_dir in found if not is_dir for i in range(1, len(parts))}
        found = [(parts, is_dir) for parts, is_dir in found if not is_dir or parts in parents]
    found.sort(key=lambda item: item[0])
    return [("/".join(parts), is_dir) for parts, is_dir in found]


def _open_regular(path: Path) -> io.BufferedReader:
    """Open a file that was a regular file during the walk, refusing if it became a symlink since."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ArchiveError("not a regular file", member=str(path))
    return open(fd, "rb")  # returned to the caller's ``with``
