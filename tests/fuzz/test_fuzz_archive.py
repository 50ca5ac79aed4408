"""Property tests of the safe archive reader: any bytes give a result or the package's error, and extraction
never writes outside its target directory.

Inputs: arbitrary bytes (raw, behind the zstd magic, and as a valid zstd frame of arbitrary data); valid
``bundle.tar.zst`` archives (PAX, GNU and USTAR tar) mutated before or after compression; and archives built
member by member from hostile parts (names, member types, link targets, PAX records including GNU sparse ones).
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from bundles import (
    ArchiveError,
    ManifestError,
    MemberVisitor,
    extract_bundle,
    normalize_member_name,
    read_bundle,
    scan_archive,
)
from tests.bundles._bundle_helpers import snapshot, tar_bytes, valid_members, zstd
from tests.fuzz import FUZZ

_FORMATS = (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT)
_VALID_TARS = [tar_bytes(valid_members(), fmt=fmt) for fmt in _FORMATS]

# -- inputs -----------------------------------------------------------------------------------------------------

_EDIT = st.one_of(
    st.tuples(st.just("set"), st.integers(min_value=0), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.integers(min_value=0)),
    st.tuples(st.just("insert"), st.integers(min_value=0), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), st.integers(min_value=0), st.integers(1, 600)),
)


def _mutate(data: bytes, edits: list[tuple[Any, ...]]) -> bytes:
    out = bytearray(data)
    for edit in edits:
        if not out:
            break
        at = edit[1] % len(out)
        if edit[0] == "set":
            out[at] = edit[2]
        elif edit[0] == "cut":
            del out[at:]
        elif edit[0] == "insert":
            out[at:at] = edit[2]
        else:
            del out[at : at + edit[2]]
    return bytes(out)


_MUTATED_TAR = st.builds(
    lambda tar, edits: zstd(_mutate(tar, edits)), st.sampled_from(_VALID_TARS), st.lists(_EDIT, min_size=1, max_size=6)
)
_MUTATED_ZSTD = st.builds(
    lambda tar, edits: _mutate(zstd(tar), edits), st.sampled_from(_VALID_TARS), st.lists(_EDIT, min_size=1, max_size=4)
)

_NAMES = st.one_of(
    st.sampled_from(
        [
            "manifest.json", "dist/main.wasm", "ui/index.html", "ui", "ui/", "./ui/a.js", ".", "./", "..", "../x",
            "ui/../../x", "/etc/passwd", "a\\b", "a\x00b", "a\nb", "ui//a", "ui/./a", "\udcff", "x" * 300,
            "ui/index.html/child", "dist", "C:/x", "././@PaxHeader",
        ]
    ),
    st.text(max_size=16),
)
_TYPES = st.sampled_from(
    [
        tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
        tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE, tarfile.GNUTYPE_SPARSE, b"Z", b"\x00",
    ]
)
_PAX_KEYS = st.sampled_from(
    [
        "path", "linkpath", "size", "mtime", "uid", "gid", "uname", "gname", "hdrcharset", "comment",
        "GNU.sparse.map", "GNU.sparse.size", "GNU.sparse.major", "GNU.sparse.minor", "GNU.sparse.name",
        "GNU.sparse.realsize", "GNU.sparse.offset", "GNU.sparse.numbytes", "SCHILY.xattr.user.x",
    ]
)
_PAX_VALUES = st.one_of(st.sampled_from(["", "0", "1", "-1", "1e5", "abc", "0,1", "1,x", "/etc", "../x", "BINARY"]),
                        st.text(max_size=12))
_MEMBER = st.tuples(
    _NAMES,
    _TYPES,
    st.binary(max_size=32),
    _NAMES,  # link target
    st.dictionaries(_PAX_KEYS, _PAX_VALUES, max_size=3),
)


def _built(members: list[tuple[str, bytes, bytes, str, dict[str, str]]], fmt: int, with_valid: bool) -> bytes:
    buffer = io.BytesIO()
    try:
        with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
            for info, data in valid_members() if with_valid else []:
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
            for name, type_, data, link, pax in members:
                info = tarfile.TarInfo(name)
                info.type = type_
                info.linkname = link
                info.pax_headers = pax
                regular = type_ in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
                info.size = len(data) if regular else 0
                tar.addfile(info, io.BytesIO(data) if regular else None)
    except (ValueError, UnicodeError, tarfile.TarError, OverflowError):
        pass  # the writer refused a member: what it wrote so far (a truncated archive) is an input too
    return zstd(buffer.getvalue())


_BUILT = st.builds(
    _built, st.lists(_MEMBER, min_size=1, max_size=4), st.sampled_from(_FORMATS), st.booleans()
)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ANY_BYTES = st.one_of(
    st.binary(max_size=1024),
    st.binary(max_size=1024).map(lambda b: _ZSTD_MAGIC + b),
    st.binary(max_size=2048).map(zstd),
)
ARCHIVES = st.one_of(_ANY_BYTES, _MUTATED_TAR, _MUTATED_ZSTD, _BUILT)


def _pax_chain(count: int) -> bytes:
    """``count`` PAX extended headers in a row, then one small file: tarfile recursed once per header."""
    records = b"11 path=ab\n"
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = len(records)
    pax = header.tobuf(format=tarfile.USTAR_FORMAT) + records + bytes(-len(records) % 512)
    member = tarfile.TarInfo("a")
    member.size = 1
    return zstd(pax * count + member.tobuf(format=tarfile.USTAR_FORMAT) + b"x" + bytes(511) + bytes(1024))


def _sparse_pax(records: dict[str, str]) -> bytes:
    info = tarfile.TarInfo("ui/a.txt")
    info.size = 1
    info.pax_headers = records
    return zstd(tar_bytes([*valid_members(), (info, b"x")]))


# Findings, each pinned on every property below: they raised ValueError / RecursionError / OSError (ENAMETOOLONG,
# extraction only), not ArchiveError.
_FOUND = [
    zstd(tar_bytes([*valid_members(), (tarfile.TarInfo("x" * 300), b"")])),
    _pax_chain(3000),
    _sparse_pax({"GNU.sparse.map": "abc"}),
    _sparse_pax({"GNU.sparse.size": "x"}),
    _sparse_pax({"GNU.sparse.realsize": "1e5"}),
    _sparse_pax({"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}),
]


def _pin_findings(**other: Any) -> Any:
    def pin(test: Any) -> Any:
        for data in _FOUND:
            test = example(data=data, **other)(test)
        return test

    return pin


# -- properties -------------------------------------------------------------------------------------------------


@FUZZ
@given(ARCHIVES)
@_pin_findings()
def test_scan_gives_clean_members_or_an_archive_error(data: bytes) -> None:
    try:
        files, dirs = scan_archive(data, MemberVisitor())
    except ArchiveError:
        return
    for name in [*files, *dirs]:
        assert normalize_member_name(name) == name
    assert not set(files) & dirs


@FUZZ
@given(ARCHIVES)
@_pin_findings()
@example(zstd(_VALID_TARS[0]))
def test_read_bundle_gives_contents_or_a_bundle_error(data: bytes) -> None:
    try:
        contents = read_bundle(data)
    except (ArchiveError, ManifestError):
        return
    assert contents.entry_path in contents.members
    assert contents.entry.startswith(b"\x00asm")


@FUZZ
@given(ARCHIVES, st.sampled_from([None, "ui/", "dist"]), st.booleans())
@_pin_findings(prefix=None, planted=False)
@example(data=zstd(_VALID_TARS[1]), prefix="ui/", planted=True)
def test_extract_never_writes_outside_its_directory(data: bytes, prefix: str | None, planted: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dest = root / "dest"
        dest.mkdir()
        (root / "outside").mkdir()
        (root / "outside" / "keep.txt").write_bytes(b"keep")
        if planted:  # a symlink already in the destination, pointing out of it
            (dest / "ui").symlink_to(root / "outside")
        before = snapshot(root)
        try:
            extracted = extract_bundle(data, dest, prefix=prefix)
        except ArchiveError:
            assert snapshot(root) == before  # refused: everything this call created is gone again
            return
        after = snapshot(root)
        outside = {path: kind for path, kind in after.items() if not path.startswith("dest/") and path != "dest"}
        assert outside == {p: k for p, k in before.items() if not p.startswith("dest/") and p != "dest"}
        for item in extracted:
            path = dest / item.path
            assert path.resolve().is_relative_to(dest.resolve())
            assert not path.is_symlink()
            assert path.stat().st_size == item.size
