"""Where Chimera TUI keeps things on this machine, from :mod:`platformdirs` (the per-OS conventions:
XDG on Linux, ``~/Library/...`` on macOS, ``%LOCALAPPDATA%`` on Windows).

Precedence, first match wins (README.md, "Where files go"):

- **sessions** (and sweeps, under ``sweeps/`` inside): ``--sessions-dir``, ``$CHIMERA_TUI_SESSIONS``,
  ``./sessions`` when the current folder is a Chimera project (it has a ``sessions/`` folder), else
  ``<user data>/sessions``.
- **exports** (the TUI's export dialog): ``$CHIMERA_TUI_EXPORTS``, ``./exports`` in a Chimera project,
  else ``<user data>/exports``.
- **user profiles** (config): ``$CHIMERA_TUI_PROFILES``, else ``<user config>/profiles``.
- **the log** (state): ``$CHIMERA_TUI_LOG``, else ``<user state>/chimera-tui.log``.

Nothing here creates a folder: the writers do, when they first write.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "chimera-tui"
# appauthor=False below: no vendor folder on Windows (…\chimera-tui, not …\chimera-tui\chimera-tui)


def user_data_dir() -> Path:
    """The user data folder (Linux: ``$XDG_DATA_HOME/chimera-tui``, else ``~/.local/share/chimera-tui``)."""
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False)


def user_config_dir() -> Path:
    """The user config folder (Linux: ``$XDG_CONFIG_HOME/chimera-tui``, else ``~/.config/chimera-tui``)."""
    from platformdirs import user_config_path

    return user_config_path(APP_NAME, appauthor=False)


def user_state_dir() -> Path:
    """The user state folder (Linux: ``$XDG_STATE_HOME/chimera-tui``, else ``~/.local/state/chimera-tui``)."""
    from platformdirs import user_state_path

    return user_state_path(APP_NAME, appauthor=False)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def project_dir(cwd: Path | None = None) -> Path | None:
    """The current folder when it is a Chimera project (it has a ``sessions/`` folder), else None."""
    here = Path.cwd() if cwd is None else cwd
    return here if (here / "sessions").is_dir() else None


def sessions_dir(cwd: Path | None = None) -> Path:
    """``$CHIMERA_TUI_SESSIONS``, else ``./sessions`` in a Chimera project, else the user data folder's."""
    explicit = _env_path("CHIMERA_TUI_SESSIONS")
    if explicit is not None:
        return explicit
    project = project_dir(cwd)
    if project is not None:
        return Path("sessions") if cwd is None else project / "sessions"
    return user_data_dir() / "sessions"


def exports_dir(cwd: Path | None = None) -> Path:
    """``$CHIMERA_TUI_EXPORTS``, else ``./exports`` in a Chimera project, else the user data folder's."""
    explicit = _env_path("CHIMERA_TUI_EXPORTS")
    if explicit is not None:
        return explicit
    project = project_dir(cwd)
    if project is not None:
        return Path("exports") if cwd is None else project / "exports"
    return user_data_dir() / "exports"


def user_profiles_dir() -> Path:
    """``$CHIMERA_TUI_PROFILES``, else the user config folder's ``profiles/``."""
    return _env_path("CHIMERA_TUI_PROFILES") or user_config_dir() / "profiles"


def log_path() -> Path:
    """``$CHIMERA_TUI_LOG``, else ``chimera-tui.log`` in the user state folder."""
    return _env_path("CHIMERA_TUI_LOG") or user_state_dir() / "chimera-tui.log"
