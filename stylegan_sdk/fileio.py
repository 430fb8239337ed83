"""Atomic file writes: a temporary file in the same folder, fsync, then rename over the target.

A reader never sees a half-written file, and a crash leaves the previous file (or none) in place.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from typing import BinaryIO

# mkstemp makes 0600 files; a new file should get the usual mode (0666 less the umask) and a
# replaced file keeps its mode.
_UMASK = os.umask(0)
os.umask(_UMASK)


def default_dir_mode() -> int:
    """Mode a new folder gets from os.mkdir (0777 less the umask); mkdtemp makes 0700 ones."""
    return 0o777 & ~_UMASK


def _new_file_mode(path: str) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary name beside `path`; if the block succeeds the file there replaces `path`."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"path: folder {folder!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _new_file_mode(path))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(folder)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `path` only if the block finishes without error."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        yield f


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path) as f:
        f.write(data)


def atomic_write_with(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """For writers that want a file name (e.g. shutil.copyfile): write to a temp name, then rename."""
    with atomic_path(path) as tmp:
        write(tmp)


def _fsync_dir(folder: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
