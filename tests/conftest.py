"""Shared fixtures: anyio on asyncio, isolated sessions/profiles/log locations."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes into the repo's sessions/, the user's profiles, exports or log."""
    monkeypatch.setenv("CHIMERA_TUI_SESSIONS", str(tmp_path / "sessions"))
    monkeypatch.setenv("CHIMERA_TUI_PROFILES", str(tmp_path / "user_profiles"))
    monkeypatch.setenv("CHIMERA_TUI_LOG", str(tmp_path / "chimera-tui.log"))
    monkeypatch.setenv("CHIMERA_TUI_EXPORTS", str(tmp_path / "exports"))
    monkeypatch.setenv("CHIMERA_TUI_PREFERENCES", str(tmp_path / "preferences.json"))
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
