"""FileStore specifics: symlinks never followed, atomic creation, root handling, file URLs."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from bundles._errors import ObjectNotFound, StoreError
from bundles.store import FileStore, open_store


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret").write_bytes(b"not yours")
    return path


def _files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if not p.is_dir())


async def test_objects_are_read_only_files_and_no_temp_file_remains(root: Path) -> None:
    async with FileStore(root) as store:
        await store.put_bytes("sha256/abc/bundle.tar.zst", b"data")
    final = root / "sha256/abc/bundle.tar.zst"
    assert final.read_bytes() == b"data"
    assert stat.S_IMODE(final.stat().st_mode) == 0o444
    assert _files(root) == ["sha256/abc/bundle.tar.zst"]


async def test_symlinked_directory_is_never_followed(root: Path, outside: Path) -> None:
    await trio.Path(root).mkdir()
    (root / "sha256").symlink_to(outside, target_is_directory=True)
    async with FileStore(root) as store:
        with pytest.raises(StoreError, match="symlink"):
            await store.put_bytes("sha256/planted", b"escape attempt")
        with pytest.raises(StoreError, match="symlink"):
            await store.get_bytes("sha256/secret", max_bytes=100)
        with pytest.raises(StoreError, match="symlink"):
            await store.exists("sha256/secret")
        with pytest.raises(StoreError, match="symlink"):
            await store.delete("sha256/secret")
    assert _files(outside) == ["secret"]


async def test_symlinked_object_is_never_followed(root: Path, outside: Path) -> None:
    await trio.Path(root).mkdir()
    (root / "obj").symlink_to(outside / "secret")
    async with FileStore(root) as store:
        with pytest.raises(StoreError, match="symlink"):
            await store.get_bytes("obj", max_bytes=100)
        with pytest.raises(StoreError, match="symlink"):
            await store.exists("obj")
        # Putting the very bytes the link points at must not "confirm" the link as the object.
        with pytest.raises(StoreError, match="symlink"):
            await store.put_bytes("obj", b"not yours")
        with pytest.raises(StoreError, match="symlink"):
            await store.delete("obj")
    assert (outside / "secret").read_bytes() == b"not yours"
    assert (root / "obj").is_symlink()


async def test_fifo_at_a_key_fails_instead_of_hanging(root: Path) -> None:
    await trio.Path(root).mkdir()
    os.mkfifo(root / "pipe")
    async with FileStore(root) as store:
        with trio.fail_after(10), pytest.raises(StoreError, match="not a regular file"):
            await store.get_bytes("pipe", max_bytes=100)


async def test_delete_refuses_a_directory_and_ignores_a_missing_parent(root: Path) -> None:
    (root / "journal" / "v1").mkdir(parents=True)
    (root / "sha256").write_bytes(b"a file")
    async with FileStore(root) as store:
        with pytest.raises(StoreError, match="not a regular file"):
            await store.delete("journal/v1")
        await store.delete("sha256/x")  # the parent is a file: nothing named so exists
    assert (root / "journal" / "v1").is_dir()
    assert (root / "sha256").read_bytes() == b"a file"


async def test_a_file_where_a_directory_should_be(root: Path) -> None:
    await trio.Path(root).mkdir()
    (root / "sha256").write_bytes(b"a file")
    async with FileStore(root) as store:
        with pytest.raises(ObjectNotFound):
            await store.get_bytes("sha256/x", max_bytes=10)
        assert not await store.exists("sha256/x")
        with pytest.raises(StoreError) as info:
            await store.put_bytes("sha256/x", b"x")
        assert not isinstance(info.value, ObjectNotFound)


async def test_a_directory_at_the_key_is_not_an_object(root: Path) -> None:
    async with FileStore(root) as store:
        await store.put_bytes("sha256/abc/bundle.tar.zst", b"x")
        assert not await store.exists("sha256/abc")
        with pytest.raises(StoreError, match="not a regular file"):
            await store.get_bytes("sha256/abc", max_bytes=10)


async def test_leftover_temp_files_do_not_block_or_count(root: Path) -> None:
    (root / "sha256").mkdir(parents=True)
    (root / "sha256/.tmp-deadbeef").write_bytes(b"half an obj")  # what a crash mid-write leaves
    async with FileStore(root) as store:
        assert not await store.exists("sha256/deadbeef")
        await store.put_bytes("sha256/deadbeef", b"whole object")
        assert await store.get_bytes("sha256/deadbeef", max_bytes=100) == b"whole object"


def test_a_write_that_fails_midway_leaves_no_object(root: Path) -> None:
    # A real mid-write failure: the child may not grow any file past 64 KiB (RLIMIT_FSIZE), then
    # tries to store 1 MiB. The object must not appear, whole or partial, and no temp file may remain.
    script = textwrap.dedent(
        f"""
        import resource, signal, trio
        from bundles._errors import StoreError
        from bundles.store import FileStore
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
        async def main():
            try:
                await FileStore({str(root)!r}).put_bytes("sha256/big", b"x" * (1 << 20))
            except StoreError as exc:
                print("StoreError:", exc)
        trio.run(main)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("StoreError: file store: cannot write 'sha256/big'")
    assert _files(root) == []


async def test_ping_creates_the_root_or_reports_it(tmp_path: Path) -> None:
    async with FileStore(tmp_path / "new" / "store") as store:
        await store.ping()
    assert (tmp_path / "new" / "store").is_dir()
    async with FileStore(tmp_path / "absent", create=False) as store:
        with pytest.raises(StoreError, match="is not usable"):
            await store.ping()
        assert not await store.exists("x")
        with pytest.raises(ObjectNotFound):
            await store.get_bytes("x", max_bytes=1)
    (tmp_path / "a-file").write_bytes(b"")
    async with FileStore(tmp_path / "a-file") as store:
        with pytest.raises(StoreError, match="is not usable"):
            await store.ping()


def test_root_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="absolute"):
        FileStore("relative/dir")


async def test_open_store_file_urls(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/with%20space")
    assert isinstance(store, FileStore)
    assert store.root == f"{tmp_path}/with space"
    await store.put_bytes("k", b"v")
    assert (tmp_path / "with space" / "k").read_bytes() == b"v"
    assert isinstance(open_store(f"file://localhost{tmp_path}"), FileStore)
    for bad in ("file://otherhost/dir", "file:relative/dir", f"file://{tmp_path}?x=1"):
        with pytest.raises(StoreError, match="bundle store URL"):
            open_store(bad)
