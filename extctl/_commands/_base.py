"""What a subcommand is, and the file helpers several commands share."""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bundles import DEFAULT_MAX_COMPRESSED_BYTES, ArchiveError

__all__ = ["Command", "read_capped", "write_atomic"]


@dataclass(frozen=True)
class Command:
    """One ``extctl`` subcommand.

    Attributes:
        name: the word on the command line.
        help: one line for ``extctl --help``.
        configure: adds the command's arguments to its parser.
        run: does the work and returns the exit code; raises ``BundleError``/``ExtctlError`` to reject.
    """

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def read_capped(path: Path, *, max_bytes: int = DEFAULT_MAX_COMPRESSED_BYTES, what: str = "bundle") -> bytes:
    """Read a whole file, refusing one larger than ``max_bytes`` without reading it all."""
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ArchiveError(f"{what} {path} is larger than {max_bytes} bytes")
    return data


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so readers never see half a file.

    With ``overwrite=False`` an existing ``path`` is an error (``FileExistsError``), checked at the rename.
    """
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails with FileExistsError instead of replacing
            os.unlink(tmp)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
