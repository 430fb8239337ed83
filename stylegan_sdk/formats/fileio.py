"""Atomic file writes: a temporary file in the same folder, fsync, then rename over the target.

A reader never sees a half-written file, and a crash leaves the previous file (or none) in place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
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


# ----------------------------------------------------------------------------
# Output paths: check first (touching nothing), make the missing folders only when there is something to write


def move_into_place(src: str, dst: str, aside: str | None = None) -> None:
    """Rename a finished file or folder `src` over `dst` (same file system): a folder gets the usual mode, an
    old `dst` is renamed aside first (into folder `aside`, default dst's own) and removed after, so `dst` is
    always whole: old or new."""
    if os.path.isdir(src):
        os.chmod(src, default_dir_mode())
    if not os.path.lexists(dst):
        os.replace(src, dst)
        return
    old = tempfile.mkdtemp(prefix=f".{os.path.basename(dst)}.old.", dir=aside or os.path.dirname(os.path.abspath(dst)))
    os.rmdir(old)
    os.replace(dst, old)
    os.replace(src, dst)
    if os.path.isdir(old) and not os.path.islink(old):
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.unlink(old)


def why_not_creatable(path: str | os.PathLike, folder: bool = False) -> str | None:
    """Why `path` cannot be written as a file (or used as a folder, folder=True) once its missing parent
    folders are made, or None when it can. Looks only: creates nothing."""
    text = os.fspath(path)
    if not text:
        return "empty path"
    full = os.path.abspath(text)
    if os.path.isdir(full):
        if not folder:
            return f"{text!r} is a folder"
        return None if os.access(full, os.W_OK | os.X_OK) else f"{text!r} is not writable"
    if folder and os.path.lexists(full):
        return f"{text!r} exists and is not a folder"
    above = os.path.dirname(full)
    while not os.path.lexists(above):  # the root always exists
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        return f"cannot create {text!r}: {above!r} is not a folder"
    if not os.access(above, os.W_OK | os.X_OK):
        return f"cannot create {text!r}: {above!r} is not writable"
    return None


def make_folders(folder: str | os.PathLike) -> list[str]:
    """Create `folder` and the missing folders above it (like os.makedirs); returns those made, outermost first."""
    folder = os.path.abspath(os.fspath(folder))
    missing = []
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    made: list[str] = []
    try:
        for path in reversed(missing):
            try:
                os.mkdir(path)
            except FileExistsError:  # made meanwhile by someone else: theirs, not ours to remove
                if not os.path.isdir(path):
                    raise
                continue
            made.append(path)
    except BaseException:
        remove_empty_folders(made)
        raise
    return made


def remove_empty_folders(made: list[str]) -> None:
    """Undo make_folders: remove the folders it made, innermost first, those still empty only."""
    for path in reversed(made):
        with contextlib.suppress(OSError):
            os.rmdir(path)


@contextlib.contextmanager
def made_folders(folder: str | os.PathLike) -> Iterator[str]:
    """Make `folder` (and the missing folders above it) for the block; if the block fails, the folders
    made here are removed again (when empty), so a failed write leaves the disk as it was."""
    made = make_folders(folder)
    try:
        yield os.path.abspath(os.fspath(folder))
    except BaseException:
        remove_empty_folders(made)
        raise


def made_parents(path: str | os.PathLike) -> contextlib.AbstractContextManager[str]:
    """made_folders for the folder that will hold the file (or folder) `path`."""
    return made_folders(os.path.dirname(os.path.abspath(os.fspath(path))))
