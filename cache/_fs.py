"""Blocking filesystem work of the disk cache. Everything here runs in a worker thread.

Crash safety rests on three rules: (1) nothing appears under an entry's final path except by ``rename`` of a
finished file or directory; (2) scratch files live under ``<root>/.tmp/<token>/`` which belongs to one open
cache and is held by an ``flock`` on ``<root>/.tmp/<token>.lock``; (3) a scratch area whose lock nobody holds
belongs to a dead process and is removed at the next start. Several processes may therefore share one root.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ._keys import INDEX_NAME, PRECOMPILED_DIR, is_hex, validate_relpath

log = logging.getLogger(__name__)

INDEX_FORMAT: Final = 1
TMP_DIR: Final = ".tmp"
HASH_CHUNK: Final = 1 << 20
#: Errors that mean "the filesystem has no room" (blocks or quota), as opposed to a broken write.
DISK_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT})


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One file of an entry as recorded in index.json."""

    size: int
    sha256: str


@dataclass(slots=True)
class IndexData:
    """The parsed index.json of one entry (kept in memory; the copy on disk is rewritten atomically)."""

    hex: str
    files: dict[str, FileInfo]
    subtrees: set[str]
    created: float
    last_access: float

    @property
    def total_bytes(self) -> int:
        return sum(info.size for info in self.files.values())

    def to_json(self) -> bytes:
        doc = {
            "format": INDEX_FORMAT,
            "hex": self.hex,
            "created": self.created,
            "last_access": self.last_access,
            "total_bytes": self.total_bytes,
            "files": {
                rel: {"size": info.size, "sha256": info.sha256} for rel, info in sorted(self.files.items())
            },
            "subtrees": sorted(self.subtrees),
        }
        return json.dumps(doc, indent=1).encode()


def parse_index(raw: bytes, hex_digest: str) -> IndexData:
    """Parse and check an index.json; raise ValueError when anything is off."""
    doc: Any = json.loads(raw)
    if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT or doc.get("hex") != hex_digest:
        raise ValueError("wrong format or hash")
    files_doc = doc.get("files")
    if not isinstance(files_doc, dict):
        raise ValueError("files is not an object")
    files: dict[str, FileInfo] = {}
    for rel, info in files_doc.items():
        validate_relpath(rel)
        size, digest = info.get("size"), info.get("sha256")
        if type(size) is not int or size < 0 or not isinstance(digest, str) or not is_hex(digest):
            raise ValueError(f"bad file record for {rel!r}")
        files[rel] = FileInfo(size, digest)
    subtrees = doc.get("subtrees", [])
    created, last_access = doc.get("created"), doc.get("last_access")
    if not isinstance(subtrees, list) or not all(isinstance(s, str) for s in subtrees):
        raise ValueError("subtrees is not a list of names")
    if not isinstance(created, int | float) or not isinstance(last_access, int | float):
        raise ValueError("created/last_access are not numbers")
    index = IndexData(hex_digest, files, set(subtrees), float(created), float(last_access))
    if doc.get("total_bytes") != index.total_bytes:
        raise ValueError("total_bytes does not add up")
    return index


def load_index(entry_dir: Path, hex_digest: str) -> IndexData | None:
    """Read ``entry_dir/index.json``; None when missing or invalid."""
    try:
        return parse_index((entry_dir / INDEX_NAME).read_bytes(), hex_digest)
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        log.debug("cache entry %s has no valid index: %s", hex_digest, exc)
        return None


def hash_file(path: Path, *, sync: bool = False) -> FileInfo:
    """sha256 and size of a file read through one descriptor (optionally fsynced on the way)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
        if sync:
            os.fsync(fh.fileno())
    return FileInfo(size, digest.hexdigest())


def stat_key(path: Path) -> tuple[int, int, int, int]:
    """What a cheap re-check compares: size, mtime, ctime, inode (any rewrite changes one of them)."""
    st = os.stat(path, follow_symlinks=False)
    if not stat.S_ISREG(st.st_mode):
        raise FileNotFoundError(path)
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes | bytearray | memoryview) -> None:
    """Write a new file and fsync it (the caller renames it into place)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def disk_full_error(exc: BaseException) -> OSError | None:
    """The ENOSPC/EDQUOT ``OSError`` behind ``exc`` (itself, its cause or context, a group member), if any.

    A fill is the caller's code and may wrap the error it met while writing; the chain still says why.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def rmtree_quiet(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def scan_tree(top: Path, *, prefix: str = "", sync: bool = True) -> tuple[dict[str, FileInfo], list[str]]:
    """Hash every regular file under ``top``; return the records (keys prefixed) and dropped author files.

    Raises:
        ValueError: a symlink, a special file, or a name the cache cannot index.
    """
    files: dict[str, FileInfo] = {}
    dropped: list[str] = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        here = Path(dirpath)
        rel_dir = here.relative_to(top).as_posix()
        for name in dirnames:
            if (here / name).is_symlink():
                raise ValueError(f"symlink {name!r} in {rel_dir!r}")
        if not prefix and rel_dir == "." and PRECOMPILED_DIR in dirnames:
            # Precompiled native code only ever comes from this cache, never from a fill (a bundle).
            dirnames.remove(PRECOMPILED_DIR)
            shutil.rmtree(here / PRECOMPILED_DIR)
            dropped.append(PRECOMPILED_DIR + "/")
        for name in filenames:
            path = here / name
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            mode = os.lstat(path).st_mode
            if not stat.S_ISREG(mode):
                raise ValueError(f"{rel!r} is not a regular file")
            if not prefix and rel in (INDEX_NAME, PRECOMPILED_DIR):
                raise ValueError(f"{rel!r} is a name the cache reserves")
            full = f"{prefix}/{rel}" if prefix else rel
            validate_relpath(full)
            files[full] = hash_file(path, sync=sync)
    return files, dropped


def indexed_files_present(entry_dir: Path, index: IndexData) -> bool:
    """Cheap start-up check: every indexed file exists as a regular file of the recorded size."""
    for rel, info in index.files.items():
        try:
            st = os.stat(entry_dir / rel, follow_symlinks=False)
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode) or st.st_size != info.size:
            return False
    return True


def load_published(entry_dir: Path, hex_digest: str) -> IndexData | None:
    """The index of a published entry whose listed files are all present, else None."""
    index = load_index(entry_dir, hex_digest)
    return index if index is not None and indexed_files_present(entry_dir, index) else None


def publish_entry(root: Path, index: IndexData, tmp: Path, trash: Path) -> IndexData:
    """Write index.json into a finished fill directory and rename it to ``<root>/<hex>`` in one step.

    When another process sharing the root published the same hash first, its entry is kept (same content)
    and this one discarded; a broken leftover in the way is moved to ``trash`` first.
    """
    write_durable(tmp / INDEX_NAME, index.to_json())
    fsync_dir(tmp)
    final = root / index.hex
    try:
        os.rename(tmp, final)
    except OSError:
        existing = load_published(final, index.hex)
        if existing is not None:
            rmtree_quiet(tmp)
            return existing
        os.rename(final, trash)
        rmtree_quiet(trash)
        os.rename(tmp, final)
    fsync_dir(root)
    return index


def load_entries(root: Path, scratch: ScratchArea, *, remove_unlisted: bool) -> list[IndexData]:
    """Start-up scan: the valid entries under ``root``; broken ones are removed.

    An entry is broken when its index.json is missing or invalid, or a listed file is missing or has another
    size (hashes are checked on first load, not here). With ``remove_unlisted`` (no other live process uses
    the root), files that an interrupted write left without an index record are deleted too.
    """
    entries: list[IndexData] = []
    for name in sorted(os.listdir(root)):
        if not is_hex(name):
            continue
        path = root / name
        index = load_published(path, name) if path.is_dir() and not path.is_symlink() else None
        if index is None:
            log.warning("cache %s: removing entry %s without a valid index", root, name)
            trash = scratch.new_path("trash")
            os.rename(path, trash)
            rmtree_quiet(trash)
            continue
        if remove_unlisted and (stray := remove_unindexed(path, index)):
            log.info("cache %s: removed %d unlisted files from %s", root, stray, name)
        entries.append(index)
    return entries


def remove_unindexed(entry_dir: Path, index: IndexData) -> int:
    """Delete files an interrupted ``add_file``/subtree left without an index record; return their count."""
    removed = 0
    for dirpath, dirnames, filenames in os.walk(entry_dir, topdown=False, followlinks=False):
        here = Path(dirpath)
        rel_dir = here.relative_to(entry_dir).as_posix()
        for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if rel != INDEX_NAME and rel not in index.files:
                (here / name).unlink()
                removed += 1
        if rel_dir != ".":
            with contextlib.suppress(OSError):
                here.rmdir()  # only succeeds when empty
    return removed


class ScratchArea:
    """``<root>/.tmp/<token>/``: this open cache's scratch space, owned through an flock on ``<token>.lock``."""

    def __init__(self, tmp_root: Path) -> None:
        tmp_root.mkdir(parents=True, exist_ok=True)
        while True:
            token = f"{os.getpid()}-{secrets.token_hex(6)}"
            lock_path = tmp_root / f"{token}.lock"
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # Another process's start-up clean may have taken and unlinked the file in between.
                if os.fstat(fd).st_ino == os.stat(lock_path).st_ino:
                    break
            except OSError:
                pass
            os.close(fd)
        self.token = token
        self.lock_path = lock_path
        self._fd: int | None = fd
        self.path = tmp_root / token
        self.path.mkdir()

    def new_path(self, kind: str) -> Path:
        return self.path / f"{kind}-{secrets.token_hex(8)}"

    def close(self) -> None:
        rmtree_quiet(self.path)
        if self._fd is not None:
            with contextlib.suppress(FileNotFoundError):
                self.lock_path.unlink()
            os.close(self._fd)
            self._fd = None


def clean_dead_scratch(tmp_root: Path, own_token: str) -> tuple[int, bool]:
    """Remove scratch areas of processes that are gone; return (removed, alone).

    ``alone`` is True when no other live cache uses this root, so unindexed files may be removed safely.
    A lock file is created before its directory, so a directory is only removed when its lock file is gone or
    can be locked (its owner is dead).
    """
    removed = 0
    alone = True
    tokens = {name.removesuffix(".lock") for name in os.listdir(tmp_root)} - {own_token}
    for token in sorted(tokens):
        lock_path = tmp_root / f"{token}.lock"
        try:
            fd = os.open(lock_path, os.O_RDWR)
        except (FileNotFoundError, IsADirectoryError):
            rmtree_quiet(lock_path)
            rmtree_quiet(tmp_root / token)
            removed += 1
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                alone = False
                continue
            rmtree_quiet(tmp_root / token)
            with contextlib.suppress(FileNotFoundError):
                lock_path.unlink()
            removed += 1
        finally:
            os.close(fd)
    return removed, alone
