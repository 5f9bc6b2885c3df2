"""File output and input errors: a failed or interrupted command never leaves a half-written file,
and every I/O error names the path the user gave and what is wrong with it.

`atomic_open(path)` writes to a temporary file beside `path` and renames it
over `path` only when everything went well. Any OSError on the way comes out
as a `FileWriteError` naming `path` (never the temporary name) and the cause:
a missing directory, a directory in the way, no permission, a full disk.
`FileReadError` does the same for reading.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


class FileWriteError(OSError):
    """Writing `path` failed; str() is one line naming `path` and the cause. `errno` is kept."""

    def __init__(self, path: str | Path, cause: str, err: int | None = None) -> None:
        super().__init__(err, cause)
        self.path = str(path)
        self.cause = cause

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.cause}"


class FileReadError(OSError):
    """Reading `path` failed; str() is one line naming `path` and the cause. `errno` is kept."""

    def __init__(self, path: str | Path, cause: str, err: int | None = None) -> None:
        super().__init__(err, cause)
        self.path = str(path)
        self.cause = cause

    def __str__(self) -> str:
        return f"cannot read {self.path}: {self.cause}"


def _broken_directory(directory: Path) -> str | None:
    """What is wrong with `directory` as a place for files: its first ancestor (itself included)
    that is missing or not a directory, in words; None when it is a directory."""
    chain = [directory, *directory.parents]
    for d in reversed(chain):  # from the root down: the first one that breaks
        if not d.exists():
            return f"directory {d} does not exist"
        if not d.is_dir():
            return f"{d} is not a directory"
    return None


def write_cause(path: str | Path, e: OSError) -> str:
    """What is wrong with writing `path`, in words, from the OSError a write raised."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    code = e.errno
    if code in (errno.ENOENT, errno.ENOTDIR):
        broken = _broken_directory(parent)
        if broken is not None:
            return broken
    if code in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST) and p.is_dir():
        return "it is a directory"
    if code in (errno.EACCES, errno.EPERM):
        target = p if p.exists() and not os.access(p, os.W_OK) else parent
        return f"permission denied ({'file' if target == p else 'directory'} {target})"
    if code == errno.ENOSPC:
        return "No space left on device (disk full)"
    if code == errno.EDQUOT:
        return "disk quota exceeded"
    if code == errno.EROFS:
        return "read-only file system"
    return e.strerror or str(e)


def read_cause(path: str | Path, e: OSError) -> str:
    """What is wrong with reading `path`, in words."""
    p = Path(path)
    if e.errno in (errno.ENOENT, errno.ENOTDIR):
        return _broken_directory(p.parent if str(p.parent) else Path(".")) or "no such file"
    if e.errno == errno.EISDIR:
        return "it is a directory"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return e.strerror or str(e)


def read_bytes(path: str | Path) -> bytes:
    """The bytes of `path`; a failure is a FileReadError naming it."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise FileReadError(path, read_cause(path, e), e.errno) from None


def check_writable(path: str | Path) -> None:
    """Fail now, naming `path`, when a later write of it is bound to fail: its directory is
    missing or not writable, or a directory stands at `path`. Commands call it before a
    long compilation or simulation, so a typo in `-o` costs no minutes."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    broken = _broken_directory(parent)
    if broken is not None:
        raise FileWriteError(path, broken, errno.ENOENT)
    if p.is_dir():
        raise FileWriteError(path, "it is a directory", errno.EISDIR)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FileWriteError(path, f"permission denied (directory {parent})", errno.EACCES)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, durable: bool = True) -> Iterator[IO]:
    """Open a temporary file beside `path`; on success fsync it and rename it over `path`.

    `durable=False` skips the fsyncs: for a cache that carries its own checksum, where a
    crash may lose the file but never passes off a damaged one. Errors are FileWriteError
    naming `path`; the temporary file is removed on any failure (KeyboardInterrupt too).
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    except OSError as e:
        raise FileWriteError(path, write_cause(path, e), e.errno) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a normal file gets the usual mode
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, FileWriteError):
            raise FileWriteError(path, write_cause(path, e), e.errno) from None
        raise
    if durable:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (a crash right after it keeps the new file)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # not every platform opens directories
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    """The process umask, read without changing it where Linux tells it (os.umask is process-wide:
    setting it to read it races with other threads creating files)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: str | Path, data: bytes | memoryview, *, durable: bool = True) -> None:
    with atomic_open(path, "wb", durable=durable) as f:
        f.write(data)
