"""Builders shared by the bundle tests: valid bundle trees, and hand-made (hostile) archives.

Named ``_bundle_helpers`` (not ``_helpers``) because tests/bundles is not a package: its directory is put
on sys.path, and a generic module name could collide with another test directory's helper.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import wasmtime
import zstandard

COMPONENT = wasmtime.wat2wasm("(component)")
CORE_MODULE = wasmtime.wat2wasm("(module)")
assert COMPONENT[:8] == b"\x00asm\x0d\x00\x01\x00"


def manifest_dict(**overrides: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "name": "com.example.hello",
        "publisher": "Example Inc.",
        "version": "1.2.3",
        "runtime": "wasm-js@1",
        "capabilities": ["cap:http.fetch", "cap:storage.kv"],
        "ui": {"type": "iframe", "entry": "ui/index.html", "hooks": {"appMenu": {"label": "Hello"}}},
        "api": {
            "endpoints": [
                {"method": "GET", "path": "/items", "handler": "list"},
                {"method": "GET", "path": "/items/:id", "handler": "get"},
                {"method": "POST", "path": "/items", "handler": "create"},
            ]
        },
        "assets": ["ui/**/*"],
    }
    manifest.update(overrides)
    return {k: v for k, v in manifest.items() if v is not None}


def default_files(manifest: Mapping[str, Any] | None = None) -> dict[str, bytes]:
    return {
        "manifest.json": json.dumps(manifest if manifest is not None else manifest_dict()).encode(),
        "dist/main.wasm": COMPONENT,
        "ui/index.html": b"<!doctype html><title>hello</title><script src=app.js></script>",
        "ui/app.js": b"console.log('hello');\n",
        "ui/img/logo.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    }


def write_tree(root: Path, files: Mapping[str, bytes] | None = None) -> Path:
    """Write ``files`` (relative path -> bytes) under ``root``; the default is a small valid bundle tree."""
    for rel, data in (files if files is not None else default_files()).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def zstd(data: bytes, *, level: int = 3) -> bytes:
    return zstandard.ZstdCompressor(level=level).compress(data)


def file_member(name: str, data: bytes = b"x", **attrs: Any) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def special_member(name: str, type_: bytes, **attrs: Any) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = type_
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, None


def tar_bytes(members: Iterable[tuple[tarfile.TarInfo, bytes | None]], *, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def archive(members: Iterable[tuple[tarfile.TarInfo, bytes | None]], *, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A bundle.tar.zst made by hand from the given members, in the given order."""
    return zstd(tar_bytes(members, fmt=fmt))


def valid_members(manifest: Mapping[str, Any] | None = None) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    return [file_member(name, data) for name, data in default_files(manifest).items()]


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` (recursively, symlinks not followed) with its kind and size."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
            out[str(path.relative_to(root))] = f"{kind}:{st.st_size if kind == 'file' else ''}"
    return out
