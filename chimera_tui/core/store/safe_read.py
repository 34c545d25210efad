"""The one way the project reads a file: regular files only, of bounded size.

`open()` on a FIFO blocks until a writer comes (a `sessions` listing then hangs); a symbolic link to
`/dev/zero` reads forever; a 500 MB file costs twice that in memory. Here the file is opened without
blocking, checked with `fstat` on the open descriptor (so it cannot be swapped between check and
read), refused unless it is a regular file, and read to at most `limit` bytes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

KiB, MiB = 1024, 1024 * 1024
#: session.toml, sweep.toml, profiles: small by construction (the prompt is the largest part)
MAX_MANIFEST_BYTES = 64 * MiB
#: metrics.json, sweep.json, workflow.json, imported Chimeraforge files
MAX_RECORD_BYTES = 1024 * MiB
#: prompt files, workflow data files
MAX_INPUT_BYTES = 64 * MiB


class UnsafeRead(OSError):
    """Not a regular file, or larger than the bound: `str(err)` is one line naming the file."""

    def __str__(self) -> str:
        return str(self.strerror)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _size(n: int) -> str:
    return f"{n / MiB:g} MiB" if n >= MiB else f"{n / KiB:g} KiB"


def read_bytes(path: Path | str, limit: int) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them, else UnsafeRead (an OSError);
    other OSErrors (missing, permission) as they come."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeRead(0, f"{path} is {_kind(info.st_mode)}, not a regular file; not read")
        if info.st_size > limit:
            raise UnsafeRead(0, f"{path} is larger than {_size(limit)} ({info.st_size:,} bytes); not read")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:  # the file may grow while it is read: never past the bound
            chunk = os.read(fd, min(limit + 1 - total, 8 * MiB))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise UnsafeRead(0, f"{path} grew past {_size(limit)} while it was read; not read")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: Path | str, limit: int, encoding: str = "utf-8") -> str:
    """`read_bytes` decoded (UnicodeDecodeError, a ValueError, when it is not `encoding`)."""
    return read_bytes(path, limit).decode(encoding)
