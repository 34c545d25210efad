"""Logging: details go to a log file (and to stderr with --debug); users see one clear line."""

from __future__ import annotations

import logging
from pathlib import Path


def log_path() -> Path:
    """`$CHIMERA_TUI_LOG`, else `chimera-tui.log` in the user state folder (chimera_tui.places)."""
    from chimera_tui.places import log_path as configured

    return configured()


class _QuietFileHandler(logging.FileHandler):
    """A log file that cannot be written (disk full, removed) must not print tracebacks to the user."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def setup_logging(debug: bool = False, to_stderr: bool = True) -> Path | None:
    """Log to the file (DEBUG); with `debug`, also to stderr. Returns the file, or None if unwritable."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    path: Path | None = log_path()
    try:
        assert path is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = _QuietFileHandler(path, encoding="utf-8")
        file_handler.setFormatter(fmt)
        root.addHandler(file_handler)
    except OSError:
        path = None
    if debug and to_stderr:
        stream = logging.StreamHandler()
        stream.setFormatter(fmt)
        stream.setLevel(logging.DEBUG)
        root.addHandler(stream)
    for noisy in ("httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path
