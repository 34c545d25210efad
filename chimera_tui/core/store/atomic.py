"""Atomic file writes: temp file in the same directory, fsync, rename, fsync the directory."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a reader (or a crash) sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; give the file what open() would: 0666 less the user's umask
        if hasattr(os, "fchmod"):  # POSIX (Windows has no modes to fix)
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (os.umask sets as it reads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- user-chosen output paths (exports, reports) ----------------------------------------------------
class OutputRefused(OSError):
    """The output path names something that must not be written or replaced (a directory, a block
    device, a socket, a symbolic link to a file): `str(err)` is one line naming the path and why."""

    def __str__(self) -> str:
        return str(self.strerror)


class MissingFolder(OutputRefused):
    """The output's folder does not exist (and the caller asked not to create folders)."""


def current_umask() -> int:
    """The process umask, read without changing it where the platform allows (Linux /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # fallback: a brief swap (not thread-safe, hence only when /proc is absent)
    os.umask(mask)
    return mask


def write_output(path: Path, data: bytes, create_folders: bool = True) -> str:
    """Write `data` to a path the user chose, without ever replacing what should not be replaced.

    - absent, or a regular file: atomic (temp file, fsync, rename); a new file gets 0o666 less the
      umask, an existing one keeps its mode (and its owner, when run as root);
    - a character device or a FIFO (`/dev/stdout`, `/dev/null`, `>(cmd)`), also through symbolic
      links: written straight through, never replaced;
    - a symbolic link to a regular file or to nothing: refused (the link is never replaced, and the
      file it points to is not written through a name the user may not mean);
    - a directory, a block device, a socket: refused;
    - a path whose folder does not exist: created with its folders, or refused (`MissingFolder`)
      when `create_folders` is False (the CLI: a typo in a folder name is an error, not a new folder).

    Returns how it was written: "replaced", "created" or "written through". Raises `OutputRefused`
    (an OSError with a one-line message) for a refused path, OSError for a failed write.
    """
    import stat

    try:
        link = os.lstat(path)
    except FileNotFoundError:
        link = None
    try:
        target = os.stat(path) if link is not None else None
    except FileNotFoundError:
        target = None  # a dangling symbolic link
    if link is not None and stat.S_ISLNK(link.st_mode):
        if target is not None and (stat.S_ISCHR(target.st_mode) or stat.S_ISFIFO(target.st_mode)):
            _write_through(path, data)
            return "written through"
        what = "nothing (a dangling link)" if target is None else _kind(target.st_mode)
        raise OutputRefused(
            0, f"{path} is a symbolic link to {what}; refusing to write through it (name the target itself)"
        )
    if target is None:
        if not create_folders and not path.parent.is_dir():
            raise MissingFolder(
                errno.ENOENT,
                f"cannot write {path}: the folder {path.parent} does not exist (create it first)",
            )
        _atomic_write_mode(path, data, 0o666 & ~current_umask(), None)
        return "created"
    mode = target.st_mode
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        _write_through(path, data)
        return "written through"
    if not stat.S_ISREG(mode):
        raise OutputRefused(0, f"{path} is {_kind(mode)}; refusing to write there (give a file path)")
    owner = (target.st_uid, target.st_gid) if os.geteuid() == 0 else None
    _atomic_write_mode(path, data, stat.S_IMODE(mode), owner)
    return "replaced"


def _kind(mode: int) -> str:
    import stat

    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISFIFO, "a FIFO"),
    ):
        if test(mode):
            return name
    return "a special file"


def _write_through(path: Path, data: bytes) -> None:
    """Write into an existing character device or FIFO (opened for writing, never created). A FIFO
    nobody reads fails at once (ENXIO) instead of blocking forever."""
    import fcntl
    import stat

    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OutputRefused(0, f"{path}: no process is reading this FIFO") from None
        raise
    try:
        mode = os.fstat(fd).st_mode  # what was opened, not what was looked at (a swapped link)
        if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
            raise OutputRefused(0, f"{path} changed while it was opened; refusing to write through it")
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _atomic_write_mode(path: Path, data: bytes, mode: int, owner: tuple[int, int] | None) -> None:
    """atomic_write_bytes, with the new file's mode (and owner) set before it takes the name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            if owner is not None:
                with contextlib.suppress(OSError):
                    os.fchown(fh.fileno(), *owner)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
