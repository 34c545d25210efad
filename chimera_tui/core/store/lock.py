"""An exclusive lock on a folder (a sweep being resumed): `fcntl.flock` on `<folder>/.lock`.

The kernel drops the lock when its holder exits, however it exits (SIGKILL, a crash), so a sweep
interrupted any way stays resumable; a second holder is refused at once, with the first one's pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from chimera_tui.core.errors import ChimeraError

LOCK_NAME = ".lock"


class Locked(ChimeraError):
    kind = "locked"


@contextlib.contextmanager
def folder_lock(folder: Path, what: str) -> Iterator[None]:
    """Hold the lock of `folder` for the block; `Locked` (one line naming `what`) when another
    process holds it."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise Locked(f"cannot lock {what} ({path}): {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise Locked(
                f"{what} is being run by another process{who}; wait for it to end, or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
