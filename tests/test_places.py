"""Where files go: chimera_tui.places precedence, the one --sessions-dir, file modes."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from chimera_tui import places
from chimera_tui.cli.common import sessions_root
from chimera_tui.cli.main import build_parser
from chimera_tui.core.store.atomic import atomic_write_text


@pytest.fixture
def no_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CHIMERA_TUI_SESSIONS", "CHIMERA_TUI_EXPORTS", "CHIMERA_TUI_PROFILES", "CHIMERA_TUI_LOG"):
        monkeypatch.delenv(name, raising=False)
    for name, sub in (("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state")):
        monkeypatch.setenv(name, str(tmp_path / sub))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


@pytest.mark.skipif(sys.platform != "linux", reason="the XDG layout is Linux's")
def test_user_folders_follow_xdg(no_overrides: Path) -> None:
    assert places.sessions_dir() == no_overrides / "data" / "chimera-tui" / "sessions"
    assert places.exports_dir() == no_overrides / "data" / "chimera-tui" / "exports"
    assert places.user_profiles_dir() == no_overrides / "config" / "chimera-tui" / "profiles"
    assert places.log_path() == no_overrides / "state" / "chimera-tui" / "chimera-tui.log"


def test_a_chimera_project_keeps_its_sessions_here(no_overrides: Path) -> None:
    (no_overrides / "work" / "sessions").mkdir()
    assert places.sessions_dir() == Path("sessions")
    assert places.exports_dir() == Path("exports")
    assert places.sessions_dir(no_overrides / "work") == no_overrides / "work" / "sessions"


def test_environment_beats_project_and_user_folders(
    no_overrides: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (no_overrides / "work" / "sessions").mkdir()
    monkeypatch.setenv("CHIMERA_TUI_SESSIONS", str(no_overrides / "s"))
    monkeypatch.setenv("CHIMERA_TUI_EXPORTS", str(no_overrides / "e"))
    monkeypatch.setenv("CHIMERA_TUI_PROFILES", str(no_overrides / "p"))
    monkeypatch.setenv("CHIMERA_TUI_LOG", str(no_overrides / "l.log"))
    assert places.sessions_dir() == no_overrides / "s"
    assert places.exports_dir() == no_overrides / "e"
    assert places.user_profiles_dir() == no_overrides / "p"
    assert places.log_path() == no_overrides / "l.log"


@pytest.mark.parametrize(
    "argv",
    [
        ["--sessions-dir", "FLAG", "sessions"],
        ["sessions", "--sessions-dir", "FLAG"],
        ["--sessions-dir", "OTHER", "compare", "a", "b", "--sessions-dir", "FLAG"],
        ["sweep", "list", "--sessions-dir", "FLAG"],
        ["bench", "--sessions-dir", "FLAG"],
    ],
)
def test_the_flag_beats_the_environment_before_or_after_the_command(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHIMERA_TUI_SESSIONS", "ENV")
    assert sessions_root(build_parser().parse_args(argv)) == Path("FLAG")


def test_without_the_flag_the_environment_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHIMERA_TUI_SESSIONS", "ENV")
    assert sessions_root(build_parser().parse_args(["sessions"])) == Path("ENV")


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_files_get_the_users_umask_not_0600(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "f.txt", "x")
        with open(tmp_path / "g.txt", "w") as fh:  # what open() gives
            fh.write("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "f.txt").stat().st_mode)
    assert mode == 0o666 & ~mask == stat.S_IMODE((tmp_path / "g.txt").stat().st_mode)
