from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from bundles import ArchiveError, ExtractedFile, extract_bundle, pack_directory
from tests.bundles._bundle_helpers import archive, default_files, file_member, snapshot, valid_members, write_tree


@pytest.fixture
def bundle(tmp_path: Path) -> bytes:
    return pack_directory(write_tree(tmp_path / "src"))


def test_extract_everything(tmp_path: Path, bundle: bytes) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    extracted = extract_bundle(bundle, dest)
    files = default_files()
    assert sorted(extracted, key=lambda f: f.path) == sorted(
        (ExtractedFile(name, len(body), hashlib.sha256(body).hexdigest()) for name, body in files.items()),
        key=lambda f: f.path,
    )
    for name, body in files.items():
        path = dest / name
        assert path.read_bytes() == body
        assert stat.S_IMODE(path.stat().st_mode) & 0o022 == 0  # not group/world writable


def test_extract_only_the_ui_subtree(tmp_path: Path, bundle: bytes) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    extracted = extract_bundle(bundle, dest, prefix="ui/")
    assert [f.path for f in extracted] == ["ui/app.js", "ui/img/logo.svg", "ui/index.html"]
    assert snapshot(dest) == {
        "ui": "dir:",
        "ui/app.js": f"file:{len(default_files()['ui/app.js'])}",
        "ui/img": "dir:",
        "ui/img/logo.svg": f"file:{len(default_files()['ui/img/logo.svg'])}",
        "ui/index.html": f"file:{len(default_files()['ui/index.html'])}",
    }
    # "ui" without the slash means the same directory, never "ui-other/".
    other = tmp_path / "other"
    other.mkdir()
    assert [f.path for f in extract_bundle(bundle, other, prefix="ui")] == [f.path for f in extracted]


def test_planted_symlink_in_dest_is_not_followed(tmp_path: Path, bundle: bytes) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "ui").symlink_to(outside)
    before = snapshot(tmp_path)
    with pytest.raises(ArchiveError) as info:
        extract_bundle(bundle, dest)
    assert info.value.member == "ui"
    assert snapshot(tmp_path) == before
    assert list(outside.iterdir()) == []


def test_planted_file_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "victim.txt"
    target.write_text("original")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "manifest.json").symlink_to(target)
    with pytest.raises(ArchiveError, match="already exists"):
        extract_bundle(archive(valid_members()), dest)
    assert target.read_text() == "original"


def test_existing_files_are_never_overwritten(tmp_path: Path, bundle: bytes) -> None:
    dest = tmp_path / "dest"
    (dest / "ui").mkdir(parents=True)
    (dest / "ui" / "app.js").write_text("mine")
    (dest / "keep.txt").write_text("keep")
    with pytest.raises(ArchiveError) as info:
        extract_bundle(bundle, dest)
    assert info.value.member == "ui/app.js"
    # Rolled back to exactly what was there.
    assert snapshot(dest) == {"ui": "dir:", "ui/app.js": "file:4", "keep.txt": "file:4"}
    assert (dest / "ui" / "app.js").read_text() == "mine"


def test_failure_late_in_the_archive_rolls_back_earlier_files(tmp_path: Path) -> None:
    data = archive([*valid_members(), file_member("zz/../../escape", b"x")])
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(ArchiveError, match="traversal"):
        extract_bundle(data, dest)
    assert snapshot(tmp_path) == {"dest": "dir:"}


def test_dest_must_exist(tmp_path: Path, bundle: bytes) -> None:
    with pytest.raises(FileNotFoundError):
        extract_bundle(bundle, tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        extract_bundle(bundle, tmp_path / "file")


@pytest.mark.parametrize("name", ["ui/" + "x" * 300, "ui/" + "d" * 300 + "/index.html"], ids=["file", "directory"])
def test_a_name_the_file_system_cannot_hold_is_an_archive_error(tmp_path: Path, name: str) -> None:
    """Found by tests/fuzz: a 300-byte segment (within max_name_bytes, over NAME_MAX) raised a bare OSError."""
    dest = tmp_path / "dest"
    dest.mkdir()
    data = archive([*valid_members(), file_member(name, b"x")])
    with pytest.raises(ArchiveError, match="cannot hold this name") as caught:
        extract_bundle(data, dest)
    assert caught.value.member is not None
    assert caught.value.member.startswith("ui/")
    assert snapshot(dest) == {}  # what was extracted before it is removed again
