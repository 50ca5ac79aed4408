"""Hostile and malformed archives, each built by hand, refused by reading and by extraction."""

from __future__ import annotations

import functools
import io
import tarfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from bundles import (
    DEFAULT_MAX_FILES,
    ArchiveError,
    ArchiveLimits,
    EntryError,
    ManifestError,
    check_component,
    extract_bundle,
    read_bundle,
    read_member,
)
from tests.bundles._bundle_helpers import (
    COMPONENT,
    CORE_MODULE,
    archive,
    file_member,
    manifest_dict,
    snapshot,
    special_member,
    tar_bytes,
    valid_members,
    zstd,
)

MiB = 1024 * 1024
GiB = 1024 * MiB
Builder = Callable[[], bytes]


def _with_valid(*extra: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    return archive([*valid_members(), *extra])


HOSTILE: dict[str, tuple[Builder, str | None, str]] = {
    "traversal": (lambda: _with_valid(file_member("../x", b"owned")), "../x", "traversal"),
    "nested-traversal": (lambda: _with_valid(file_member("ui/../../x", b"owned")), "ui/../../x", "traversal"),
    "absolute": (lambda: _with_valid(file_member("/tmp/owned", b"owned")), "/tmp/owned", "absolute"),
    "backslash": (lambda: _with_valid(file_member("ui\\..\\x", b"owned")), "ui\\..\\x", "backslash"),
    "control-char": (lambda: _with_valid(file_member("ui/a\x01b", b"x")), "ui/a\x01b", "control character"),
    "empty-segment": (lambda: _with_valid(file_member("ui//x", b"x")), "ui//x", "empty"),
    "symlink": (
        lambda: _with_valid(special_member("ui/link", tarfile.SYMTYPE, linkname="/etc/passwd")),
        "ui/link",
        "symbolic link",
    ),
    "hardlink": (
        lambda: _with_valid(special_member("ui/hard", tarfile.LNKTYPE, linkname="manifest.json")),
        "ui/hard",
        "hard link",
    ),
    "char-device": (
        lambda: _with_valid(special_member("ui/null", tarfile.CHRTYPE, devmajor=1, devminor=3)),
        "ui/null",
        "device",
    ),
    "block-device": (lambda: _with_valid(special_member("ui/sda", tarfile.BLKTYPE)), "ui/sda", "device"),
    "fifo": (lambda: _with_valid(special_member("ui/pipe", tarfile.FIFOTYPE)), "ui/pipe", "fifo"),
    "duplicate": (lambda: _with_valid(file_member("ui/app.js", b"second copy")), "ui/app.js", "duplicate"),
    "duplicate-after-dot-slash": (
        lambda: _with_valid(file_member("./ui/app.js", b"second copy")),
        "./ui/app.js",
        "duplicate",
    ),
    "file-then-dir": (
        lambda: _with_valid(special_member("ui/app.js/", tarfile.DIRTYPE)),
        "ui/app.js",
        "duplicate",
    ),
    "file-as-parent": (lambda: _with_valid(file_member("ui/app.js/x", b"x")), "ui/app.js/x", "is a file"),
    "sparse": (lambda: _with_valid(special_member("ui/sparse", tarfile.GNUTYPE_SPARSE)), "ui/sparse", "unsupported"),
    "non-utf8-name": (
        lambda: archive([*valid_members(), file_member("ui/\udcff.txt", b"x")], fmt=tarfile.GNU_FORMAT),
        "ui/\udcff.txt",
        "UTF-8",
    ),
}


def _assert_refused_everywhere(
    tmp_path: Path, data: bytes, member: str | None, fragment: str, *, limits: ArchiveLimits | None = None
) -> None:
    extra = {} if limits is None else {"limits": limits}
    with pytest.raises(ArchiveError) as info:
        read_bundle(data, **extra)
    assert fragment in str(info.value)
    if member is not None:
        assert info.value.member == member
        assert repr(member) in str(info.value)

    parent = tmp_path / "parent"
    dest = parent / "dest"
    dest.mkdir(parents=True)
    (parent / "sibling.txt").write_text("untouched")
    before = snapshot(parent)
    with pytest.raises(ArchiveError) as info:
        extract_bundle(data, dest, **extra)
    assert fragment in str(info.value)
    # Nothing was written outside dest, and what was written inside was rolled back.
    assert snapshot(parent) == before


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_member_is_refused(tmp_path: Path, case: str) -> None:
    build, member, fragment = HOSTILE[case]
    _assert_refused_everywhere(tmp_path, build(), member, fragment)


def test_too_many_files_default_limit(tmp_path: Path) -> None:
    members = valid_members() + [file_member(f"ui/many/{i:05d}", b"") for i in range(DEFAULT_MAX_FILES)]
    data = archive(members)
    with pytest.raises(ArchiveError, match=f"more than max_files={DEFAULT_MAX_FILES}"):
        read_bundle(data)
    # Extracting only dist/ still validates the whole archive.
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(ArchiveError, match=f"more than max_files={DEFAULT_MAX_FILES}"):
        extract_bundle(data, dest, prefix="dist/")
    assert snapshot(tmp_path) == {"dest": "dir:"}


def test_too_many_files_explicit_limit(tmp_path: Path) -> None:
    data = archive(valid_members() + [file_member(f"ui/f{i}", b"") for i in range(10)])
    limits = ArchiveLimits(max_files=8)
    _assert_refused_everywhere(tmp_path, data, "ui/f3", "more than max_files=8", limits=limits)
    assert read_bundle(data, limits=ArchiveLimits(max_files=20)).entry == COMPONENT


def test_member_and_total_size_limits(tmp_path: Path) -> None:
    data = _with_valid(file_member("ui/big.bin", bytes(2 * 1024 * 1024)))
    _assert_refused_everywhere(
        tmp_path / "member", data, "ui/big.bin", "max_member_bytes=1000", limits=ArchiveLimits(max_member_bytes=1000)
    )
    # Refused from its header, before its content is streamed.
    _assert_refused_everywhere(
        tmp_path / "total", data, "ui/big.bin", f"max_unpacked_bytes={MiB}",
        limits=ArchiveLimits(max_unpacked_bytes=MiB),
    )
    with pytest.raises(ArchiveError, match="max_compressed_bytes=10"):
        read_bundle(data, limits=ArchiveLimits(max_compressed_bytes=10))


@functools.cache
def _zero_bomb_member() -> bytes:
    """A tar whose single member is 1 GiB of zeros, streamed into zstd (~30 KiB compressed)."""
    info = tarfile.TarInfo("ui/zeros.bin")
    info.size = GiB
    compressor = zstandard.ZstdCompressor(level=1).compressobj()
    parts = [compressor.compress(info.tobuf(format=tarfile.PAX_FORMAT))]
    block = bytes(1024 * 1024)
    for _ in range(GiB // len(block)):
        parts.append(compressor.compress(block))
    parts.append(compressor.compress(bytes(1024)))  # end-of-archive marker
    parts.append(compressor.flush())
    return b"".join(parts)


@functools.cache
def _zero_bomb_trailer() -> bytes:
    """A valid small bundle followed by 1 GiB of zero 'padding' after the end-of-archive marker."""
    compressor = zstandard.ZstdCompressor(level=1).compressobj()
    parts = [compressor.compress(tar_bytes(valid_members()))]
    block = bytes(1024 * 1024)
    for _ in range(GiB // len(block)):
        parts.append(compressor.compress(block))
    parts.append(compressor.flush())
    return b"".join(parts)


@pytest.mark.parametrize(
    ("bomb", "fragment"),
    [(_zero_bomb_member, "max_member_bytes"), (_zero_bomb_trailer, "max_unpacked_bytes")],
    ids=["member", "trailer"],
)
def test_zstd_bomb_refused_while_streaming_with_bounded_memory(tmp_path: Path, bomb: Builder, fragment: str) -> None:
    data = bomb()
    assert len(data) < 512 * 1024  # it really is a bomb: ≥ 2000x expansion
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveError, match=fragment):
            read_bundle(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"peak Python allocation {peak} bytes while refusing a 1 GiB bomb"
    _assert_refused_everywhere(tmp_path, data, None, fragment)


def test_oversize_pax_header_refused_before_it_is_read(tmp_path: Path) -> None:
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = GiB
    data = zstd(header.tobuf(format=tarfile.USTAR_FORMAT) + bytes(2 * 1024 * 1024))
    _assert_refused_everywhere(tmp_path, data, None, "max_header_bytes")


def test_long_names_via_pax_are_fine() -> None:
    long_name = "ui/" + "/".join(["d" * 60] * 5) + "/file.txt"
    contents = read_bundle(_with_valid(file_member(long_name, b"deep")))
    assert contents.members[long_name].size == 4


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _no_end_marker() -> bytes:
    out = b""
    for info, data in valid_members():
        body = data or b""
        out += info.tobuf(format=tarfile.PAX_FORMAT) + body + bytes(-len(body) % 512)
    return out


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "bad magic"),
        (b"PK\x03\x04 zip, not zstd", "bad magic"),
        (zstd(b"this is not a tar archive at all" * 20), "malformed"),
        (_half(zstd(tar_bytes(valid_members()))), "."),
        (zstd(tar_bytes(valid_members())) + b"trailing garbage", "malformed zstd"),
        (zstd(_no_end_marker()), "end-of-archive marker"),
        (zstd(tar_bytes(valid_members()) + b"\x01" + bytes(511)), "after the end-of-archive marker"),
    ],
    ids=["empty", "zip", "not-tar", "truncated-zstd", "garbage-after-frame", "no-end-marker", "data-after-end"],
)
def test_malformed_archives(data: bytes, fragment: str) -> None:
    with pytest.raises(ArchiveError, match=fragment):
        read_bundle(data)


def test_corrupt_header_mid_archive_is_not_a_silent_end() -> None:
    raw = bytearray(tar_bytes(valid_members()))
    # The second member's header starts after the first member (header + content padded to 512).
    first_size = len(valid_members()[0][1] or b"")
    second = 512 + ((first_size + 511) // 512) * 512
    raw[second + 148 : second + 156] = b"0000000\0"  # wrong checksum
    with pytest.raises(ArchiveError, match="malformed tar header"):
        read_bundle(zstd(bytes(raw)))


def test_bad_manifest_inside_archive_names_the_field() -> None:
    data = archive(valid_members(manifest_dict(api={"endpoints": [{"method": "GET", "path": "x", "handler": "h"}]})))
    with pytest.raises(ManifestError) as info:
        read_bundle(data)
    assert info.value.path == "api.endpoints[0].path"


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        (b"(component)\n", "WebAssembly text (WAT)"),
        (b";; a comment\n(component)", "WebAssembly text (WAT)"),
        (CORE_MODULE, "core WebAssembly module"),
        (b"\x00asm\x0e\x00\x01\x00", "unsupported version/layer"),
        (b"\x7fELF\x02\x01\x01", "no \\0asm preamble"),
        (b"", "no \\0asm preamble"),
    ],
)
def test_entry_must_be_a_binary_component(entry: bytes, fragment: str) -> None:
    with pytest.raises(EntryError) as info:
        check_component(entry, name="dist/main.wasm")
    assert fragment in str(info.value)
    members = [m if m[0].name != "dist/main.wasm" else file_member("dist/main.wasm", entry) for m in valid_members()]
    with pytest.raises(EntryError) as info:
        read_bundle(archive(members))
    assert info.value.member == "dist/main.wasm"
    assert info.value.code == "invalid_entry"


def test_read_member_and_dot_slash_names() -> None:
    members = [(special_member("./", tarfile.DIRTYPE))] + [
        file_member("./" + info.name, data or b"") for info, data in valid_members()
    ]
    data = archive(members)
    assert read_member(data, "ui/app.js") == b"console.log('hello');\n"
    assert read_bundle(data).entry == COMPONENT
    with pytest.raises(ArchiveError, match="no such file"):
        read_member(data, "ui/missing.js")


def test_archives_from_other_tar_writers_are_read(tmp_path: Path) -> None:
    # GNU and USTAR formats (e.g. made by `tar --zstd`) are as good as our own PAX output.
    for fmt in (tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
            for info, data in valid_members():
                info.mtime = 1_700_000_000
                info.uname = "someone"
                tar.addfile(info, io.BytesIO(data or b""))
        assert read_bundle(zstd(buffer.getvalue(), level=19)).entry_path == "dist/main.wasm"


def test_oversize_manifest_is_refused() -> None:
    data = archive(valid_members(manifest_dict(publisher="x" * 200, assets=[f"ui/{i}/*" for i in range(100)])))
    with pytest.raises(ManifestError, match="more than 1000"):
        read_bundle(data, limits=ArchiveLimits(max_manifest_bytes=1000))
    assert read_bundle(data).manifest.assets is not None


def test_malformed_pax_record_is_refused() -> None:
    records = b"0 path=ui/x\n"  # a zero record length
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = len(records)
    pax = header.tobuf(format=tarfile.USTAR_FORMAT) + records + bytes(-len(records) % 512)
    member = file_member("ui/x", b"x")[0].tobuf(format=tarfile.USTAR_FORMAT) + b"x" + bytes(511)
    data = zstd(_no_end_marker() + pax + member + bytes(1024))
    with pytest.raises(ArchiveError, match="malformed extended header"):
        read_bundle(data)


def _extended_header(type_: bytes, payload: bytes) -> bytes:
    header = tarfile.TarInfo("././@LongLink" if type_ == tarfile.GNUTYPE_LONGNAME else "././@PaxHeader")
    header.type = type_
    header.size = len(payload)
    return header.tobuf(format=tarfile.USTAR_FORMAT) + payload + bytes(-len(payload) % 512)


@pytest.mark.parametrize(
    "header",
    [_extended_header(tarfile.XHDTYPE, b"13 path=ui/x\n"), _extended_header(tarfile.GNUTYPE_LONGNAME, b"ui/x\0")],
    ids=["pax", "gnu-longname"],
)
def test_chained_extended_headers_are_refused_not_recursed(header: bytes) -> None:
    """Found by tests/fuzz: tarfile reads the header after an extended one by recursing (RecursionError)."""
    member = file_member("ui/x", b"x")[0].tobuf(format=tarfile.USTAR_FORMAT) + b"x" + bytes(511)
    data = zstd(_no_end_marker() + header * 3000 + member + bytes(1024))
    with pytest.raises(ArchiveError, match="extended headers in a row"):
        read_bundle(data)
    # A few in a row, as real archives have, are fine.
    assert "ui/x" in read_bundle(zstd(_no_end_marker() + header * 3 + member + bytes(1024))).members


@pytest.mark.parametrize(
    "records",
    [
        {"GNU.sparse.map": "abc"},
        {"GNU.sparse.size": "x"},
        {"GNU.sparse.realsize": "1e5"},
        {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"},
        {"GNU.sparse.map": "0,1", "GNU.sparse.size": "1", "GNU.sparse.name": "ui/y"},
    ],
)
def test_pax_sparse_files_are_refused_before_their_maps_are_parsed(records: dict[str, str]) -> None:
    """Found by tests/fuzz: tarfile parsed GNU.sparse.* with bare int() (ValueError) or read a map of any size."""
    info, body = file_member("ui/a.txt", b"x")
    info.pax_headers = records
    data = archive([*valid_members(), (info, body)])
    with pytest.raises(ArchiveError, match="GNU sparse") as caught:
        read_bundle(data)
    assert caught.value.member == "ui/a.txt"
