"""``FileStore``: objects are files under a root directory (``file:///abs/dir``).

Paths are walked one segment at a time with directory file descriptors opened ``O_NOFOLLOW``, so no
symlink anywhere below the root is ever followed (the root itself may be a symlink: the operator chose
it). An object appears by ``link(2)`` of a fully written, fsynced temporary file in the same directory:
``link`` fails if the name exists, so exactly one of several concurrent writers creates the object, the
others compare bytes, and a crash leaves at most a ``.tmp-*`` file, never a partial object.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from types import TracebackType
from typing import Final, final

import trio

from .._errors import ObjectExists, ObjectNotFound, ObjectTooLarge, StoreError
from ._base import DEFAULT_CHUNK_SIZE, CappedDigest, StoreStatistics, check_get_args
from ._keys import validate_key

__all__ = ["DEFAULT_DIR_MODE", "DEFAULT_FILE_MODE", "FileStore"]

DEFAULT_FILE_MODE: Final = 0o444
"""Objects are read-only on disk: they are never rewritten."""
DEFAULT_DIR_MODE: Final = 0o755

_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
# O_NONBLOCK: a FIFO planted under the root must not hang the open; regular files ignore the flag.
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_TEMP_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC


@contextlib.contextmanager
def _os_errors(key: str, action: str, *, missing: type[StoreError] = ObjectNotFound) -> Iterator[None]:
    """Translate OSErrors of one operation into the store's error tree."""
    try:
        yield
    except StoreError:
        raise
    except (FileNotFoundError, NotADirectoryError) as exc:
        if missing is ObjectNotFound:
            raise ObjectNotFound(f"no object {key!r} in the file store") from exc
        raise missing(f"file store: cannot {action} {key!r}: {exc.strerror} ({exc.filename!r})") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StoreError(f"file store: refusing to follow a symlink at {key!r}") from exc
        raise StoreError(f"file store: cannot {action} {key!r}: {exc.strerror}") from exc


@final
class FileStore:
    """The bundle store on a local (or mounted) directory.

    Args:
        root: absolute path of the store's root directory.
        create: create the root (and parents) when missing, on ``ping`` and on the first write.
        chunk_size: bytes read per step by ``get_bytes``.
        file_mode: permission bits of stored objects.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        create: bool = True,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        file_mode: int = DEFAULT_FILE_MODE,
    ) -> None:
        path = os.fspath(root)
        if not os.path.isabs(path):
            raise ValueError(f"file store root must be an absolute path, got {path!r}")
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self._root = os.path.normpath(path)
        self._create = create
        self._chunk_size = chunk_size
        self._file_mode = file_mode
        self._closed = False
        self._bytes_read = 0
        self._bytes_written = 0
        self._objects_written = 0

    def __repr__(self) -> str:
        return f"FileStore({self._root!r})"

    @property
    def root(self) -> str:
        """The root directory."""
        return self._root

    def statistics(self) -> StoreStatistics:
        """Counters since the store was opened."""
        return StoreStatistics(self._bytes_read, self._bytes_written, self._objects_written)

    async def __aenter__(self) -> FileStore:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Mark the store closed; later calls raise ``StoreError``."""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("file store is closed")

    # -- blocking helpers, run in worker threads -------------------------------------------------------

    def _open_root(self, *, create: bool) -> int:
        if create:
            os.makedirs(self._root, mode=DEFAULT_DIR_MODE, exist_ok=True)
        return os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)

    def _open_parent(self, key: str, *, create: bool) -> tuple[int, str]:
        """Open the directory holding ``key`` without following symlinks; return (fd, final name)."""
        *dirs, name = key.split("/")
        fd = self._open_root(create=create)
        try:
            for segment in dirs:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(segment, DEFAULT_DIR_MODE, dir_fd=fd)
                try:
                    child = os.open(segment, _DIR_FLAGS, dir_fd=fd)
                except NotADirectoryError:
                    # O_NOFOLLOW|O_DIRECTORY reports a symlink as ENOTDIR on Linux: say which it was.
                    if stat.S_ISLNK(os.stat(segment, dir_fd=fd, follow_symlinks=False).st_mode):
                        raise OSError(errno.ELOOP, "symlink in path", segment) from None
                    raise
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd, name

    def _open_object_sync(self, key: str) -> tuple[int, int]:
        parent, name = self._open_parent(key, create=False)
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=parent)
        finally:
            os.close(parent)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise StoreError(f"file store: {key!r} is not a regular file")
        except BaseException:
            os.close(fd)
            raise
        return fd, info.st_size

    def _create_sync(self, key: str, data: bytes) -> bool:
        """Write ``data`` under ``key`` unless the name exists; return whether this call created it."""
        parent, name = self._open_parent(key, create=True)
        try:
            if self._entry_exists(parent, name):
                return False
            temp = f".tmp-{secrets.token_hex(8)}"
            fd = os.open(temp, _TEMP_FLAGS, 0o600, dir_fd=parent)
            try:
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fchmod(fd, self._file_mode)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                try:
                    # link(2) never replaces an existing name: this is the write-once arbiter.
                    os.link(temp, name, src_dir_fd=parent, dst_dir_fd=parent, follow_symlinks=False)
                except FileExistsError:
                    return False
                os.fsync(parent)
                return True
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp, dir_fd=parent)
        finally:
            os.close(parent)

    def _replace_sync(self, key: str, data: bytes) -> None:
        """Write ``data`` to a temporary file and rename it over ``key`` (atomic; a symlink there is replaced,
        never followed)."""
        parent, name = self._open_parent(key, create=True)
        try:
            temp = f".tmp-{secrets.token_hex(8)}"
            fd = os.open(temp, _TEMP_FLAGS, 0o600, dir_fd=parent)
            try:
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fchmod(fd, self._file_mode)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
                os.fsync(parent)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp, dir_fd=parent)
        finally:
            os.close(parent)

    @staticmethod
    def _entry_exists(parent: int, name: str) -> bool:
        try:
            os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def _exists_sync(self, key: str) -> bool:
        try:
            parent, name = self._open_parent(key, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return False
        try:
            mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return False
        finally:
            os.close(parent)
        if stat.S_ISLNK(mode):
            raise OSError(errno.ELOOP, "symlink", name)
        return stat.S_ISREG(mode)

    def _delete_sync(self, key: str) -> None:
        try:
            parent, name = self._open_parent(key, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                raise OSError(errno.ELOOP, "symlink", name)
            if not stat.S_ISREG(mode):
                raise OSError(errno.EISDIR, "not a regular file", name)
            os.unlink(name, dir_fd=parent)
            os.fsync(parent)
        except FileNotFoundError:
            return
        finally:
            os.close(parent)

    def _ping_sync(self) -> None:
        fd = self._open_root(create=self._create)
        os.close(fd)
        if not os.access(self._root, os.R_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "root directory is not readable", self._root)

    # -- the BundleStore API ---------------------------------------------------------------------------

    async def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` once.

        Raises:
            ValueError: the key is not a safe key.
            ObjectExists: the key already holds different bytes.
            StoreError: the file system refused (permissions, a symlink in the path, disk full, ...).
        """
        validate_key(key)
        self._check_open()
        data = bytes(data)
        with _os_errors(key, "write", missing=StoreError):
            created = await trio.to_thread.run_sync(self._create_sync, key, data)
        if created:
            self._bytes_written += len(data)
            self._objects_written += 1
            return
        try:
            existing = await self._read(key, max_bytes=len(data), sha256_hex=None)
        except ObjectTooLarge:
            raise ObjectExists(f"object {key!r} already exists with different (larger) content") from None
        if existing != data:
            raise ObjectExists(f"object {key!r} already exists with different content")

    async def replace_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key``, replacing what is there (only for objects that are not content-addressed).

        Raises:
            ValueError: the key is not a safe key.
            StoreError: the file system refused (permissions, a symlink in the path, disk full, ...).
        """
        validate_key(key)
        self._check_open()
        data = bytes(data)
        with _os_errors(key, "write", missing=StoreError):
            await trio.to_thread.run_sync(self._replace_sync, key, data)
        self._bytes_written += len(data)
        self._objects_written += 1

    async def get_bytes(self, key: str, *, max_bytes: int, sha256_hex: str | None = None) -> bytes:
        """Read the object ``key``, at most ``max_bytes`` of it, checking ``sha256_hex`` when given.

        Raises:
            ValueError: the key is not a safe key, or an argument is malformed.
            ObjectNotFound: no object under ``key``.
            ObjectTooLarge: the object is bigger than ``max_bytes`` (detected before reading when possible).
            IntegrityError: the bytes do not hash to ``sha256_hex``.
            StoreError: any other failure (a symlink or non-file at ``key``, I/O errors).
        """
        validate_key(key)
        check_get_args(max_bytes, sha256_hex)
        self._check_open()
        return await self._read(key, max_bytes=max_bytes, sha256_hex=sha256_hex)

    async def _read(self, key: str, *, max_bytes: int, sha256_hex: str | None) -> bytes:
        with _os_errors(key, "read"):
            fd, size = await trio.to_thread.run_sync(self._open_object_sync, key)
        try:
            digest = CappedDigest(key, max_bytes=max_bytes, sha256_hex=sha256_hex)
            digest.check_declared_size(size)
            while True:
                # Ask for one byte past the cap at most: enough to notice a file that grew past it.
                want = min(self._chunk_size, max_bytes - digest.size + 1)
                with _os_errors(key, "read", missing=StoreError):
                    chunk = await trio.to_thread.run_sync(os.read, fd, want)
                if not chunk:
                    break
                self._bytes_read += len(chunk)
                digest.feed(chunk)
            return digest.finish()
        finally:
            os.close(fd)

    async def exists(self, key: str) -> bool:
        """Whether a regular file is stored under ``key``.

        Raises:
            ValueError: the key is not a safe key.
            StoreError: the key names a symlink, or the file system failed.
        """
        validate_key(key)
        self._check_open()
        with _os_errors(key, "stat", missing=StoreError):
            return await trio.to_thread.run_sync(self._exists_sync, key)

    async def delete(self, key: str) -> None:
        """Remove the object ``key``; a missing object is not an error (empty directories are left).

        Raises:
            ValueError: the key is not a safe key.
            StoreError: the key names a symlink or a directory, or the file system refused.
        """
        validate_key(key)
        self._check_open()
        with _os_errors(key, "delete", missing=StoreError):
            await trio.to_thread.run_sync(self._delete_sync, key)

    async def ping(self) -> None:
        """Check that the root is a readable directory (creating it when ``create`` is set).

        Raises:
            StoreError: the root is missing, not a directory, or not readable.
        """
        self._check_open()
        try:
            await trio.to_thread.run_sync(self._ping_sync)
        except OSError as exc:
            raise StoreError(f"file store root {self._root!r} is not usable: {exc.strerror}") from exc
