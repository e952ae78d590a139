"""Files opened beneath a root directory, never through a symlink, for the built-in tools.

A path is checked first (resolved, and refused when it leaves the root), then opened one
component at a time relative to a directory descriptor with ``O_NOFOLLOW``. A symlink swapped
in between the check and the use therefore fails the open instead of being followed: the check
and the use are one step. Only regular files are read or written; a FIFO or a device is refused
without blocking (``O_NONBLOCK`` on the open, then ``fstat``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from ._tools import ToolError

__all__ = ["ConfinedFile", "open_beneath"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_SWAPPED = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)


class ConfinedFile:
    """An open regular file beneath the root; use it as a context manager."""

    def __init__(self, fd: int, relative: Path, *, created: bool = False):
        self.fd = fd
        self.relative = relative  # the path opened, relative to the root, without symlinks
        self.created = created

    def __enter__(self) -> ConfinedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)

    def read(self) -> bytes:
        os.lseek(self.fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(self.fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)

    def replace(self, data: bytes) -> None:
        """Make ``data`` the whole content of the file."""
        os.lseek(self.fd, 0, os.SEEK_SET)
        os.ftruncate(self.fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]


def open_beneath(
    root: Path, relative: Path, *, write: bool = False, create: bool = False, shown: str = ""
) -> ConfinedFile:
    """Open the regular file ``root / relative`` (``relative`` without ``..``) for reading, or
    for reading and writing; ``create`` makes it, and its missing parent directories."""
    shown = shown or str(relative)
    parts = relative.parts
    if not parts:
        raise ToolError(f"{shown!r} is a directory, not a file")
    directory = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            inner = _enter(directory, part, create=create, shown=shown)
            os.close(directory)
            directory = inner
        fd, created = _open_file(directory, parts[-1], write=write, create=create, shown=shown)
    finally:
        os.close(directory)
    problem = _not_regular(os.fstat(fd).st_mode, shown)
    if problem is not None:
        os.close(fd)
        raise problem
    os.set_blocking(fd, True)
    return ConfinedFile(fd, relative, created=created)


def _not_regular(mode: int, shown: str) -> ToolError | None:
    if stat.S_ISDIR(mode):
        return ToolError(f"{shown!r} is a directory, not a file")
    if not stat.S_ISREG(mode):
        return ToolError(f"{shown!r} is not a regular file (a FIFO, socket or device)")
    return None


def _enter(directory: int, part: str, *, create: bool, shown: str) -> int:
    """The descriptor of subdirectory ``part`` of ``directory``."""
    try:
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, dir_fd=directory)
        return os.open(part, _DIR_FLAGS, dir_fd=directory)
    except FileNotFoundError:
        raise ToolError(f"{shown!r} does not exist") from None
    except OSError as exc:
        raise _refused(exc, shown) from None


def _open_file(
    directory: int, name: str, *, write: bool, create: bool, shown: str
) -> tuple[int, bool]:
    access = os.O_RDWR if write else os.O_RDONLY
    try:
        if create:
            with contextlib.suppress(FileExistsError):
                flags = access | _FILE_FLAGS | os.O_CREAT | os.O_EXCL
                return os.open(name, flags, 0o666, dir_fd=directory), True
        return os.open(name, access | _FILE_FLAGS, dir_fd=directory), False
    except FileNotFoundError:
        raise ToolError(f"{shown!r} does not exist") from None
    except IsADirectoryError:
        raise ToolError(f"{shown!r} is a directory, not a file") from None
    except OSError as exc:
        raise _refused(exc, shown) from None


def _refused(exc: OSError, shown: str) -> ToolError:
    if exc.errno in _SWAPPED:
        return ToolError(
            f"{shown!r} changed while it was being opened (a symlink appeared on its path); "
            "it was not followed"
        )
    if exc.errno == errno.ENXIO:  # a FIFO opened for writing with no reader
        return ToolError(f"{shown!r} is not a regular file (a FIFO, socket or device)")
    return ToolError(f"cannot open {shown!r}: {exc.strerror}")
