"""Extracting (part of) an untrusted bundle into a directory without ever writing outside it."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from ._archive import DEFAULT_LIMITS, ArchiveLimits, MemberInfo, MemberVisitor, normalize_member_name, scan_archive
from ._errors import ArchiveError

__all__ = ["DEFAULT_DIR_MODE", "DEFAULT_FILE_MODE", "ExtractedFile", "extract_bundle"]

DEFAULT_FILE_MODE: Final = 0o644
DEFAULT_DIR_MODE: Final = 0o755
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
#: A name the archive may hold but the destination file system cannot (a segment over NAME_MAX, bytes the file
#: system refuses): the archive's fault, so an ArchiveError naming the member rather than a bare OSError.
_NAME_ERRNOS: Final = frozenset({errno.ENAMETOOLONG, errno.EILSEQ})


@dataclass(frozen=True)
class ExtractedFile:
    """A file written by :func:`extract_bundle`: path relative to ``dest`` (posix), size, sha256 hex."""

    path: str
    size: int
    sha256: str


def extract_bundle(
    data: bytes,
    dest: Path,
    *,
    prefix: str | None = None,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    file_mode: int = DEFAULT_FILE_MODE,
    dir_mode: int = DEFAULT_DIR_MODE,
) -> list[ExtractedFile]:
    """Extract the archive's files (only those under ``prefix``, e.g. ``"ui/"``, if given) into ``dest``.

    Paths are kept as they are in the archive (``ui/index.html`` lands at ``dest/ui/index.html``). Every
    directory is entered with ``O_NOFOLLOW`` relative to its parent's descriptor and every file is created
    with ``O_EXCL|O_NOFOLLOW``, so neither a hostile name nor a symlink planted in ``dest`` can make a write
    land outside it, and nothing already in ``dest`` is overwritten. The whole archive is validated while
    streaming; if anything is refused, what this call created is removed again.

    Args:
        data: the compressed bundle.
        dest: an existing directory (normally a fresh temporary one, renamed into place afterwards).
        prefix: only extract members whose path starts with this directory.
        limits: archive limits.
        file_mode: permission bits of created files (before umask).
        dir_mode: permission bits of created directories (before umask).

    Returns:
        The files written, in archive order.

    Raises:
        ArchiveError: the archive is hostile or malformed, a path collides with something in ``dest``, or a name
            is one the destination file system cannot hold (e.g. a segment longer than NAME_MAX).
        OSError: ``dest`` is missing or not a directory, or the file system failed.
    """
    wanted = None
    if prefix is not None:
        normalized = normalize_member_name(prefix, max_name_bytes=limits.max_name_bytes)
        if normalized is None:
            raise ValueError(f"prefix {prefix!r} names no directory")
        wanted = normalized + "/"
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    extractor = _Extractor(root_fd, wanted, file_mode=file_mode, dir_mode=dir_mode)
    try:
        scan_archive(data, extractor, limits=limits)
    except BaseException:
        extractor.rollback()
        raise
    finally:
        extractor.close()
    return extractor.extracted


class _Extractor(MemberVisitor):
    def __init__(self, root_fd: int, prefix: str | None, *, file_mode: int, dir_mode: int) -> None:
        self._root_fd = root_fd
        self._prefix = prefix
        self._file_mode = file_mode
        self._dir_mode = dir_mode
        self._cached: tuple[str, int] | None = None  # the last directory used; members come grouped by directory
        self._file: BinaryIO | None = None
        self._created_files: list[str] = []
        self._created_dirs: list[str] = []
        self.extracted: list[ExtractedFile] = []

    def _selected(self, name: str) -> bool:
        return self._prefix is None or (name + "/").startswith(self._prefix)

    def directory(self, name: str) -> None:
        if self._selected(name):
            self._dir_fd(name, create=True)

    def begin_file(self, name: str, size: int) -> bool:
        if not self._selected(name):
            return False
        parent, _, leaf = name.rpartition("/")
        parent_fd = self._dir_fd(parent, create=True)
        try:
            fd = os.open(leaf, _FILE_FLAGS, self._file_mode, dir_fd=parent_fd)
        except FileExistsError:
            raise ArchiveError("already exists in the destination directory", member=name) from None
        except OSError as exc:
            _refuse_name(exc, name)
            raise
        self._created_files.append(name)
        self._file = open(fd, "wb", closefd=True)  # noqa: SIM115 - closed in end_file/close
        return True

    def chunk(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)

    def end_file(self, info: MemberInfo) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None
        self.extracted.append(ExtractedFile(path=info.name, size=info.size, sha256=info.sha256))

    def _dir_fd(self, path: str, *, create: bool) -> int:
        """A descriptor of ``dest/path``, walked one component at a time without following symlinks."""
        if path == "":
            return self._root_fd
        if self._cached is not None and self._cached[0] == path:
            return self._cached[1]
        fd = os.dup(self._root_fd)
        walked: list[str] = []
        try:
            for part in path.split("/"):
                walked.append(part)
                if create:
                    try:
                        os.mkdir(part, self._dir_mode, dir_fd=fd)
                        self._created_dirs.append("/".join(walked))
                    except FileExistsError:
                        pass
                    except OSError as exc:
                        _refuse_name(exc, "/".join(walked))
                        raise
                try:
                    next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                        raise ArchiveError(
                            "destination already holds a non-directory (or symlink) here", member="/".join(walked)
                        ) from None
                    _refuse_name(exc, "/".join(walked))
                    raise
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        if self._cached is not None:
            os.close(self._cached[1])
        self._cached = (path, fd)
        return fd

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None
        os.close(self._root_fd)

    def rollback(self) -> None:
        """Remove what this extraction created (best effort), newest first."""
        if self._file is not None:
            self._file.close()
            self._file = None
        for name in reversed(self._created_files):
            parent, _, leaf = name.rpartition("/")
            self._remove(parent, leaf, is_dir=False)
        for name in reversed(self._created_dirs):
            parent, _, leaf = name.rpartition("/")
            self._remove(parent, leaf, is_dir=True)

    def _remove(self, parent: str, leaf: str, *, is_dir: bool) -> None:
        try:
            parent_fd = self._dir_fd(parent, create=False)
            if is_dir:
                os.rmdir(leaf, dir_fd=parent_fd)
            else:
                os.unlink(leaf, dir_fd=parent_fd)
        except (OSError, ArchiveError):
            pass


def _refuse_name(exc: OSError, member: str) -> None:
    if exc.errno in _NAME_ERRNOS:
        reason = f"the destination file system cannot hold this name ({exc.strerror})"
        raise ArchiveError(reason, member=member) from None
