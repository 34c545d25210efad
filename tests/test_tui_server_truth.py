"""Issue 14 in the TUI: the selected model's server state on the setup screen, options the server
ignores marked in the profile preview, and a cache-cohort run started from setup."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Checkbox

from chimera_tui.core.store.profiles import Profile
from chimera_tui.core.store.sessions import load_session
from tests.tui_helpers import make_app, wait_until

pytestmark = pytest.mark.anyio


async def test_setup_shows_the_model_state_and_runs_cache_cohorts(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, monitor_interval_s=0)
    async with app.run_test(size=(80, 24)) as pilot:
        setup = app.screen
        state = setup.query_one("#model-state")
        await wait_until(pilot, lambda: "engine llama.cpp" in str(state.render()))
        assert "Q4_K_M" in str(state.render()) and "trained ctx 4096" in str(state.render())
        setup.query_one("#runs").value = "1"  # type: ignore[attr-defined]
        setup.query_one("#warmup").value = "0"  # type: ignore[attr-defined]
        setup.query_one("#cold", Checkbox).value = True
        setup.query_one("#cache-cohorts", Checkbox).value = True
        with pytest.raises(ValueError, match="cache cohorts need a warm"):
            setup.build_choice()  # type: ignore[attr-defined]
        setup.query_one("#cold", Checkbox).value = False
        await pilot.press("f5")
        await wait_until(pilot, lambda: getattr(app.screen, "session", None) is not None)
        runs = load_session(app.screen.session.path).runs  # type: ignore[attr-defined]
        assert [r.cohort for r in runs] == ["cache_cold", "cache_warm"]


async def test_profile_preview_marks_options_ollama_ignores(tmp_path: Path) -> None:
    user = tmp_path / "profiles"
    user.mkdir()
    (user / "old.toml").write_text(
        Profile("old", "an old profile", {"mirostat": 2, "num_ctx": 2048}, None, False).to_toml()
    )
    app, _ = make_app(tmp_path, monitor_interval_s=0, profiles_user_dir=user)
    async with app.run_test(size=(160, 48)) as pilot:
        setup = app.screen
        setup.query_one("#profile").value = "old"  # type: ignore[attr-defined]
        preview = setup.query_one("#profile-preview")
        await wait_until(pilot, lambda: "mirostat" in str(preview.render()))
        text = str(preview.render())
        assert "ignored by Ollama ≥ 0.7.0" in text and "num_ctx = 2048 (load-time)" in text
