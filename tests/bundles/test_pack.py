from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
import zstandard

from bundles import (
    ArchiveError,
    ContentHashError,
    EntryError,
    IntegrityError,
    ManifestError,
    content_hash,
    pack_directory,
    parse_content_hash,
    read_bundle,
    verify_content_hash,
)
from tests.bundles._bundle_helpers import COMPONENT, CORE_MODULE, default_files, manifest_dict, write_tree


def test_pack_is_deterministic_across_copies_mtimes_and_modes(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src")
    first = pack_directory(src)
    assert pack_directory(src) == first

    copy = tmp_path / "copy"
    shutil.copytree(src, copy)
    for i, path in enumerate(sorted(copy.rglob("*"))):
        os.utime(path, (1_000_000 + i, 2_000_000_000 - i))
        path.chmod(0o700 if path.is_dir() else 0o600 if i % 2 else 0o755)
    again = pack_directory(copy)
    assert again == first
    assert content_hash(again) == content_hash(first)


def test_pack_fixes_member_order_and_metadata(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src")
    (src / "ui" / "a-b.css").write_bytes(b"body{}")
    data = pack_directory(src)
    raw = zstandard.ZstdDecompressor().decompress(data)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == [
        "dist", "dist/main.wasm", "manifest.json", "ui", "ui/a-b.css", "ui/app.js", "ui/img", "ui/img/logo.svg",
        "ui/index.html",
    ]
    for member in members:
        assert not member.name.startswith("./")
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (0, 0, 0, "", "")
        assert member.mode == (0o755 if member.isdir() else 0o644)
        assert member.isdir() or member.isreg()


def test_pack_content_is_readable_back(tmp_path: Path) -> None:
    files = default_files()
    data = pack_directory(write_tree(tmp_path / "src", files))
    contents = read_bundle(data)
    assert contents.content_hash == content_hash(data)
    assert contents.entry_path == "dist/main.wasm"
    assert contents.entry == COMPONENT
    assert {name: info.sha256 for name, info in contents.members.items()} == {
        name: hashlib.sha256(body).hexdigest() for name, body in files.items()
    }


def test_pack_refuses_symlinks(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src")
    (tmp_path / "secret").write_text("outside")
    (src / "ui" / "leak.txt").symlink_to(tmp_path / "secret")
    with pytest.raises(ArchiveError) as info:
        pack_directory(src)
    assert info.value.member == "ui/leak.txt"
    assert "symbolic link" in str(info.value)


def test_pack_refuses_fifos(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src")
    os.mkfifo(src / "pipe")
    with pytest.raises(ArchiveError) as info:
        pack_directory(src)
    assert info.value.member == "pipe"


def test_pack_validates_the_manifest_and_entry(tmp_path: Path) -> None:
    bad = default_files(manifest_dict(capabilities=["cap:everything"]))
    with pytest.raises(ManifestError) as info:
        pack_directory(write_tree(tmp_path / "bad-manifest", bad))
    assert info.value.path == "capabilities[0]"

    no_manifest = default_files()
    del no_manifest["manifest.json"]
    with pytest.raises(ManifestError, match=r"manifest\.json is missing"):
        pack_directory(write_tree(tmp_path / "no-manifest", no_manifest))

    wat = default_files() | {"dist/main.wasm": b"(component)\n"}
    with pytest.raises(EntryError, match="WAT"):
        pack_directory(write_tree(tmp_path / "wat", wat))

    core = default_files() | {"dist/main.wasm": CORE_MODULE}
    with pytest.raises(EntryError, match="core WebAssembly module"):
        pack_directory(write_tree(tmp_path / "core", core))


def test_entry_resolution_order(tmp_path: Path) -> None:
    files = default_files()
    del files["dist/main.wasm"]
    with pytest.raises(EntryError, match="no component entry"):
        pack_directory(write_tree(tmp_path / "none", files))

    legacy = files | {"entry.wasm": COMPONENT}
    assert read_bundle(pack_directory(write_tree(tmp_path / "legacy", legacy))).entry_path == "entry.wasm"

    wat_entry = files | {"entry.wasm": b'(component\n  (core module (func (export "f")))\n)\n'}
    with pytest.raises(EntryError, match="WAT") as info:
        pack_directory(write_tree(tmp_path / "wat-entry", wat_entry))
    assert info.value.member == "entry.wasm"

    both = files | {"entry.wasm": b"not used", "dist/main.wasm": COMPONENT}
    assert read_bundle(pack_directory(write_tree(tmp_path / "both", both))).entry_path == "dist/main.wasm"

    # The manifest's entry wins, even though it sorts after manifest.json and is not a default name.
    custom = files | {
        "manifest.json": json.dumps(manifest_dict(entry="zz/ext.wasm")).encode(),
        "zz/ext.wasm": COMPONENT,
        "dist/main.wasm": CORE_MODULE,
    }
    contents = read_bundle(pack_directory(write_tree(tmp_path / "custom", custom)))
    assert (contents.entry_path, contents.entry) == ("zz/ext.wasm", COMPONENT)

    missing = files | {"manifest.json": json.dumps(manifest_dict(entry="gone.wasm")).encode()}
    with pytest.raises(EntryError) as info:
        pack_directory(write_tree(tmp_path / "missing", missing))
    assert info.value.member == "gone.wasm"


def test_content_hash_forms() -> None:
    data = b"bundle bytes"
    hex_ = hashlib.sha256(data).hexdigest()
    assert content_hash(data) == f"sha256:{hex_}"
    assert parse_content_hash(f"sha256:{hex_}") == hex_
    assert parse_content_hash(hex_.upper()) == hex_
    assert parse_content_hash(f"SHA256:{hex_}".replace("SHA256", "sha256")) == hex_
    for bad in ("", "sha256:", f"sha512:{hex_}", hex_[:-1], hex_ + "0", f"sha256:{hex_[:-1]}g", f"md5:{hex_}"):
        with pytest.raises(ContentHashError) as info:
            parse_content_hash(bad)
        assert isinstance(info.value, ValueError)
        assert "64 hex digits" in str(info.value)


def test_flipped_byte_fails_hash_verification(tmp_path: Path) -> None:
    data = pack_directory(write_tree(tmp_path / "src"))
    expected = content_hash(data)
    assert verify_content_hash(data, expected) == expected.removeprefix("sha256:")
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x01
    with pytest.raises(IntegrityError, match="expected sha256:"):
        verify_content_hash(bytes(flipped), expected)


def _names(data: bytes) -> list[str]:
    raw = zstandard.ZstdDecompressor().decompress(data)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return [m.name for m in tar.getmembers()]


def test_pack_skips_pycache_git_and_node_modules_by_default(tmp_path: Path) -> None:
    files = default_files(manifest_dict(assets=None))
    clean = pack_directory(write_tree(tmp_path / "clean", files))
    src = write_tree(tmp_path / "src", files)
    for junk in ("__pycache__/app.cpython-311.pyc", "ui/__pycache__/x.pyc", ".git/HEAD", "node_modules/a/index.js",
                 "ui/node_modules/b.js"):
        (src / junk).parent.mkdir(parents=True, exist_ok=True)
        (src / junk).write_bytes(b"junk")
    (src / ".git" / "link").symlink_to("/etc/passwd")  # inside a skipped tree: never looked at
    data = pack_directory(src)
    assert data == clean  # same bytes, same content hash: the junk leaves no trace
    assert not any(part in name for name in _names(data) for part in ("__pycache__", ".git", "node_modules"))


def test_pack_honours_extignore_in_gitignore_syntax(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", default_files(manifest_dict(assets=None)))
    (src / "app.py").write_text("print('build script')\n")
    (src / "notes").mkdir()
    (src / "notes" / "todo.md").write_text("x")
    (src / "ui" / "app.test.js").write_text("test()")
    (src / "node_modules" / "keep").mkdir(parents=True)
    (src / "node_modules" / "keep" / "k.js").write_text("k")
    # dist/ is ignored as many copied .gitignore files do; the component entry is packed all the same.
    (src / ".extignore").write_text("# build inputs\n*.py\nnotes/\n**/*.test.js\ndist/\n!node_modules/\n")
    names = _names(pack_directory(src))
    assert not {"app.py", "notes", "ui/app.test.js", ".extignore"} & set(names)
    assert {"dist/main.wasm", "ui/app.js"} <= set(names)
    assert "node_modules/keep/k.js" in names  # re-included with '!'


def test_pack_with_assets_packs_only_them_and_what_the_bundle_needs(tmp_path: Path) -> None:
    manifest = manifest_dict(assets=["ui/img/*.svg"], precompiled={"x86_64-linux": "precompiled/x86.cwasm"})
    src = write_tree(tmp_path / "src", default_files(manifest))
    (src / "precompiled").mkdir()
    (src / "precompiled" / "x86.cwasm").write_bytes(b"artifact")
    (src / "README.md").write_text("not an asset")
    (src / "src").mkdir()
    (src / "src" / "handler.ts").write_text("export {}")
    names = _names(pack_directory(src))
    assert names == [
        "dist", "dist/main.wasm", "manifest.json", "precompiled", "precompiled/x86.cwasm", "ui",
        "ui/img", "ui/img/logo.svg", "ui/index.html",
    ]


def test_pack_assets_directory_names_everything_under_it(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", default_files(manifest_dict(assets=["ui"])))
    (src / "other.txt").write_text("left out")
    names = _names(pack_directory(src))
    assert "other.txt" not in names
    assert {"ui/app.js", "ui/img/logo.svg", "ui/index.html"} <= set(names)


def test_an_unreadable_extignore_is_refused_not_ignored(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src")
    (src / ".extignore").write_bytes(b"\xff\xfe*.py\n")
    with pytest.raises(ArchiveError, match="not UTF-8"):
        pack_directory(src)
    (src / ".extignore").write_bytes(b"#" * (256 * 1024 + 1))
    with pytest.raises(ArchiveError, match="larger than"):
        pack_directory(src)
