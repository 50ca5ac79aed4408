"""Safe, streaming scanning of untrusted ``bundle.tar.zst`` archives (the layer under ``_read``).

A scan is one pass over the archive: zstd is decompressed as a stream with a running total
(a zstd bomb is refused as soon as the total passes ``max_unpacked_bytes``, never inflated into memory),
the tar is read with ``tarfile`` in stream mode, and every member is checked before a byte of its content is
read. Names that could escape a directory (absolute, ``..``, backslashes, control characters), links,
devices, fifos, duplicates and oversize members are refused with an :class:`ArchiveError` naming the member.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import tarfile
from dataclasses import dataclass
from typing import Final, Self, cast

import zstandard

from ._errors import ArchiveError

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_COMPRESSED_BYTES",
    "DEFAULT_MAX_FILES",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_MANIFEST_BYTES",
    "DEFAULT_MAX_MEMBER_BYTES",
    "DEFAULT_MAX_NAME_BYTES",
    "DEFAULT_MAX_UNPACKED_BYTES",
    "DEFAULT_MAX_WINDOW_BYTES",
    "ArchiveLimits",
    "MemberInfo",
    "MemberVisitor",
    "normalize_member_name",
    "scan_archive",
]

DEFAULT_MAX_FILES: Final = 10_000
#: Cap on the decompressed tar stream (headers and padding included).
DEFAULT_MAX_UNPACKED_BYTES: Final = 256 * 1024 * 1024
#: A componentize-py component (a whole CPython) is ~40 MiB; leave room.
DEFAULT_MAX_MEMBER_BYTES: Final = 128 * 1024 * 1024
DEFAULT_MAX_COMPRESSED_BYTES: Final = 128 * 1024 * 1024
DEFAULT_MAX_MANIFEST_BYTES: Final = 1024 * 1024
DEFAULT_MAX_NAME_BYTES: Final = 1024
#: PAX / GNU long-name headers are read whole by tarfile, so they get their own small cap.
DEFAULT_MAX_HEADER_BYTES: Final = 64 * 1024
#: zstd's own default decoder window limit (``ZSTD_WINDOWLOG_LIMIT_DEFAULT`` = 27); bounds decoder memory.
DEFAULT_MAX_WINDOW_BYTES: Final = 1 << 27

_CHUNK: Final = 64 * 1024
_ZEROS: Final = bytes(_CHUNK)
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
_EXTENDED_HEADER_TYPES: Final = frozenset(
    {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK}
)
#: tarfile reads the header after an extended header by recursing; real archives chain a few (a global and a
#: per-file PAX header, GNU long name and long link), a hostile one thousands (RecursionError).
_MAX_EXTENDED_HEADER_CHAIN: Final = 8
# Not in typeshed: raised by TarInfo.frombuf for the all-zero end-of-archive block / an empty read.
_EOF_HEADER_ERROR: Final[type[Exception]] = tarfile.EOFHeaderError  # type: ignore[attr-defined]
_EMPTY_HEADER_ERROR: Final[type[Exception]] = tarfile.EmptyHeaderError  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps applied while reading an untrusted archive (all in bytes except ``max_files``)."""

    max_files: int = DEFAULT_MAX_FILES
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES
    max_compressed_bytes: int = DEFAULT_MAX_COMPRESSED_BYTES
    max_manifest_bytes: int = DEFAULT_MAX_MANIFEST_BYTES
    max_name_bytes: int = DEFAULT_MAX_NAME_BYTES
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_window_bytes: int = DEFAULT_MAX_WINDOW_BYTES

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"ArchiveLimits.{name} must be a positive integer, not {value!r}")


DEFAULT_LIMITS: Final = ArchiveLimits()


@dataclass(frozen=True)
class MemberInfo:
    """A regular file of the archive: normalized path, size and sha256 (hex) of its content."""

    name: str
    size: int
    sha256: str


class MemberVisitor:
    """Receives the members of an archive during :func:`scan_archive`; the default ignores everything."""

    def directory(self, name: str) -> None:
        """Called for each directory member (normalized name, no trailing slash)."""

    def begin_file(self, name: str, size: int) -> bool:
        """Called before a file's content; return True to receive it through :meth:`chunk`."""
        return False

    def chunk(self, data: bytes) -> None:
        """A piece of the current file's content (only after ``begin_file`` returned True)."""

    def end_file(self, info: MemberInfo) -> None:
        """Called after the whole content of a file whose ``begin_file`` returned True."""


def scan_archive(
    data: bytes, visitor: MemberVisitor, *, limits: ArchiveLimits = DEFAULT_LIMITS
) -> tuple[dict[str, MemberInfo], set[str]]:
    """Stream through the archive, validating every member and feeding ``visitor``.

    Returns:
        (files by normalized name, directory names), in archive order.

    Raises:
        ArchiveError: the first problem found; ``.member`` names the member when there is one.
    """
    if len(data) > limits.max_compressed_bytes:
        raise ArchiveError(
            f"archive is {len(data)} bytes, more than max_compressed_bytes={limits.max_compressed_bytes}"
        )
    if not data.startswith(_ZSTD_MAGIC):
        raise ArchiveError("not a zstd-compressed archive (bad magic)")
    reader = zstandard.ZstdDecompressor(max_window_size=limits.max_window_bytes).stream_reader(
        data, read_across_frames=True
    )
    stream = _BoundedStream(reader, limits.max_unpacked_bytes)
    state = _ScanState(limits)
    try:
        with contextlib.closing(reader):
            _walk_tar(stream, visitor, state)
    except zstandard.ZstdError as exc:
        raise ArchiveError(f"malformed zstd stream: {exc}") from None
    except tarfile.TarError as exc:
        raise ArchiveError(f"malformed tar: {exc}") from None
    return state.files, state.dirs


def _walk_tar(stream: _BoundedStream, visitor: MemberVisitor, state: _ScanState) -> None:
    tarinfo = _strict_tarinfo(state.limits.max_header_bytes)
    with tarfile.open(fileobj=stream, mode="r|", tarinfo=tarinfo, bufsize=_CHUNK) as tar:
        for member in tar:
            name = state.admit(member)
            if name is None:
                continue
            if member.isdir():
                visitor.directory(name)
                continue
            _copy_member(tar, member, name, visitor, state)
        _drain_padding(tar)


class _ScanState:
    """Member accounting: counts, sizes, and the namespace used for duplicate/conflict detection."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.count = 0
        self.files: dict[str, MemberInfo] = {}
        self.dirs: set[str] = set()
        self._parents: set[str] = set()  # every ancestor of every member, explicit or not

    def admit(self, member: tarfile.TarInfo) -> str | None:
        """Validate one member header; return its normalized name (None for a root ``.`` entry)."""
        self.count += 1
        raw = member.name
        if self.count > self.limits.max_files:
            raise ArchiveError(f"more than max_files={self.limits.max_files} members", member=raw)
        _check_type(member)
        name = normalize_member_name(raw, max_name_bytes=self.limits.max_name_bytes)
        if name is None:
            if not member.isdir():
                raise ArchiveError("empty member name", member=raw)
            return None
        if name in self.files or name in self.dirs:
            raise ArchiveError("duplicate member", member=raw)
        parts = name.split("/")
        for i in range(1, len(parts)):
            ancestor = "/".join(parts[:i])
            if ancestor in self.files:
                raise ArchiveError(f"parent {ancestor!r} is a file", member=raw)
            self._parents.add(ancestor)
        if member.isdir():
            self.dirs.add(name)
            self._parents.add(name)
            return name
        if name in self._parents:
            raise ArchiveError("a file where the archive already has a directory", member=raw)
        if member.size > self.limits.max_member_bytes:
            raise ArchiveError(
                f"{member.size} bytes, more than max_member_bytes={self.limits.max_member_bytes}", member=raw
            )
        # offset_data is where the content starts in the decompressed stream: refuse before streaming it.
        if member.offset_data + member.size > self.limits.max_unpacked_bytes:
            raise ArchiveError(
                f"{member.size} bytes would take the archive past max_unpacked_bytes={self.limits.max_unpacked_bytes}",
                member=raw,
            )
        return name


def normalize_member_name(raw: str, *, max_name_bytes: int = DEFAULT_MAX_NAME_BYTES) -> str | None:
    """Normalize a member name (drop ``./`` prefixes and trailing ``/``) or refuse it.

    Returns None for the archive root itself (``.`` or ``./``).

    Raises:
        ArchiveError: absolute, ``..``/``.``/empty segments, backslash, control characters, non-UTF-8, too long.
    """
    if _CONTROL_RE.search(raw):
        raise ArchiveError("control character in name", member=raw)
    if "\\" in raw:
        raise ArchiveError("backslash in name", member=raw)
    if raw.startswith("/"):
        raise ArchiveError("absolute path", member=raw)
    try:
        size = len(raw.encode("utf-8"))
    except UnicodeEncodeError:
        raise ArchiveError("name is not valid UTF-8", member=raw) from None
    if size > max_name_bytes:
        raise ArchiveError(f"name longer than max_name_bytes={max_name_bytes}", member=raw)
    name = raw
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    if name in ("", "."):
        return None
    for segment in name.split("/"):
        if segment == "..":
            raise ArchiveError("path traversal ('..' segment)", member=raw)
        if segment in ("", "."):
            raise ArchiveError("empty or '.' path segment", member=raw)
    return name


def _check_type(member: tarfile.TarInfo) -> None:
    if member.issym():
        raise ArchiveError(f"symbolic link (-> {member.linkname!r}) not allowed", member=member.name)
    if member.islnk():
        raise ArchiveError(f"hard link (-> {member.linkname!r}) not allowed", member=member.name)
    if member.ischr() or member.isblk():
        raise ArchiveError("device node not allowed", member=member.name)
    if member.isfifo():
        raise ArchiveError("fifo not allowed", member=member.name)
    if member.isdir():
        return
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE) or member.sparse is not None:
        raise ArchiveError(f"unsupported member type {member.type!r}", member=member.name)


def _copy_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, name: str, visitor: MemberVisitor, state: _ScanState
) -> None:
    wanted = visitor.begin_file(name, member.size)
    digest = hashlib.sha256()
    fileobj = tar.extractfile(member)
    if fileobj is None:  # pragma: no cover - regular files always have a file object
        raise ArchiveError("unreadable member", member=member.name)
    seen = 0
    while chunk := fileobj.read(_CHUNK):
        seen += len(chunk)
        digest.update(chunk)
        if wanted:
            visitor.chunk(chunk)
    if seen != member.size:
        raise ArchiveError(f"truncated: {seen} of {member.size} bytes", member=member.name)
    info = MemberInfo(name=name, size=member.size, sha256=digest.hexdigest())
    state.files[name] = info
    if wanted:
        visitor.end_file(info)


def _drain_padding(tar: tarfile.TarFile) -> None:
    """Read what follows the end-of-archive block: only zero padding may follow (and it counts to the cap)."""
    while chunk := tar.fileobj.read(_CHUNK):
        if chunk != _ZEROS[: len(chunk)]:
            raise ArchiveError("data after the end-of-archive marker")


def _strict_tarinfo(max_header_bytes: int) -> type[tarfile.TarInfo]:
    """A TarInfo class that refuses malformed headers and oversize PAX/GNU headers before they are read.

    tarfile treats a corrupt header after the first member as a silent end of archive and reads extended
    headers whole into memory; both are wrong for untrusted input. Sparse files (GNU's old ``S`` type and the
    ``GNU.sparse.*`` PAX records) are refused before tarfile parses their maps: that parsing raises ValueError
    on bad numbers and, for format 1.0, reads a map of any length from the member data. A class is made per
    scan, so the count of chained extended headers is the scan's own.
    """
    chain = 0

    class _StrictTarInfo(tarfile.TarInfo):
        @classmethod
        def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
            nonlocal chain
            buf = tarfile_.fileobj.read(tarfile.BLOCKSIZE)
            offset = tarfile_.fileobj.tell() - len(buf)
            try:
                obj = cls.frombuf(buf, tarfile_.encoding, tarfile_.errors)
            except _EOF_HEADER_ERROR:
                raise  # the end-of-archive marker: TarFile.next() stops here
            except _EMPTY_HEADER_ERROR:
                raise ArchiveError("archive ends without an end-of-archive marker (truncated?)") from None
            except tarfile.HeaderError as exc:
                raise ArchiveError(f"malformed tar header at offset {offset}: {exc}") from None
            obj.offset = offset
            if obj.type == tarfile.GNUTYPE_SPARSE:
                raise ArchiveError(f"unsupported member type {obj.type!r} (GNU sparse file)", member=obj.name)
            extended = obj.type in _EXTENDED_HEADER_TYPES
            if extended and obj.size > max_header_bytes:
                raise ArchiveError(
                    f"extended header of {obj.size} bytes, more than max_header_bytes={max_header_bytes}",
                    member=obj.name,
                )
            if extended and chain >= _MAX_EXTENDED_HEADER_CHAIN:
                raise ArchiveError(f"more than {_MAX_EXTENDED_HEADER_CHAIN} extended headers in a row", member=obj.name)
            # _proc_member is how TarInfo.fromtarfile itself finishes (PAX/GNU handling, data offsets); a bad
            # PAX record would otherwise also end the archive silently. For an extended header it reads the
            # next header by calling this method again: ``chain`` counts that recursion.
            chain += extended
            try:
                return cast(Self, obj._proc_member(tarfile_))  # type: ignore[attr-defined]
            except tarfile.HeaderError as exc:
                raise ArchiveError(f"malformed extended header at offset {offset}: {exc}", member=obj.name) from None
            finally:
                chain -= extended

        # Called by tarfile's _proc_pax for PAX-encoded sparse files (formats 0.0, 0.1, 1.0): refuse them all.
        def _proc_gnusparse_00(self, next_: tarfile.TarInfo, *_args: object) -> None:
            raise ArchiveError("unsupported member type (GNU sparse file, PAX format 0.0)", member=next_.name)

        def _proc_gnusparse_01(self, next_: tarfile.TarInfo, *_args: object) -> None:
            raise ArchiveError("unsupported member type (GNU sparse file, PAX format 0.1)", member=next_.name)

        def _proc_gnusparse_10(self, next_: tarfile.TarInfo, *_args: object) -> None:
            raise ArchiveError("unsupported member type (GNU sparse file, PAX format 1.0)", member=next_.name)

        def _apply_pax_info(self, pax_headers: dict[str, str], encoding: str, errors: str) -> None:
            # The GNU.sparse.* size fields are parsed with a bare int() here (ValueError on anything else).
            sparse = sorted(key for key in pax_headers if key.startswith("GNU.sparse."))
            if sparse:
                raise ArchiveError(f"unsupported PAX record {sparse[0]!r} (GNU sparse file)", member=self.name)
            super()._apply_pax_info(pax_headers, encoding, errors)  # type: ignore[misc]

    return _StrictTarInfo


class _BoundedStream:
    """The decompressed tar stream, refusing to produce more than ``budget`` bytes in total."""

    def __init__(self, reader: zstandard.ZstdDecompressionReader, budget: int) -> None:
        self._reader = reader
        self._budget = budget
        self._total = 0

    def read(self, size: int = -1, /) -> bytes:
        chunk: bytes = self._reader.read(_CHUNK if size < 0 else min(size, _CHUNK))
        self._total += len(chunk)
        if self._total > self._budget:
            raise ArchiveError(f"decompressed archive is larger than max_unpacked_bytes={self._budget}")
        return chunk

    def tell(self) -> int:
        return self._total

    def write(self, b: bytes, /) -> object:
        raise OSError("read-only stream")

    def seek(self, pos: int, /) -> object:
        raise OSError("not seekable")

    def close(self) -> object:
        return None
