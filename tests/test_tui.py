"""Pilot tests of the main flow against the in-process simulator."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Select, Static

from chimera_tui.core.store.sessions import load_session
from chimera_tui.sim import SimFaults
from chimera_tui.ui.screens.live import LiveScreen
from chimera_tui.ui.screens.setup import SetupScreen
from chimera_tui.ui.widgets.stream_pane import StreamPane
from tests.helpers import fast_sim
from tests.tui_helpers import make_app, wait_until

pytestmark = pytest.mark.anyio


def status_text(app, selector: str) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one(selector, Static).render())


async def test_defaults_let_enter_run_a_benchmark_and_save_it(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: "reachable" in status_text(app, "#endpoint-status"))
        setup = app.screen
        assert isinstance(setup, SetupScreen)
        assert setup.query_one("#model", Select).value == "gemma3:latest"
        assert setup.query_one("#profile", Select).value == "baseline_default"
        assert "0.33.0" in status_text(app, "#endpoint-status")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, LiveScreen))
        live = app.screen
        assert isinstance(live, LiveScreen)
        await wait_until(pilot, lambda: live.session is not None)
        table = live.query_one("#run-rows", DataTable)
        assert table.row_count == 4  # 1 warm-up + 3 runs
        assert "n=3" in str(live.query_one("#aggregate", Static).render())
        assert live.session is not None and live.session.status == "complete"
        saved = load_session(live.session.path)
        assert saved.counts["ok"] == 3
        assert live.session.path.parent == tmp_path / "sessions"
        assert live.query_one(StreamPane).content_text.strip()


async def test_choose_model_profile_and_workload(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: "reachable" in status_text(app, "#endpoint-status"))
        setup = app.screen
        setup.query_one("#model", Select).value = "qwen3:4b"
        setup.query_one("#profile", Select).value = "gpu60_ctx256_temp0p6"
        await pilot.pause()
        assert "num_ctx = 256" in status_text(app, "#profile-preview")
        assert "reload" in status_text(app, "#reload-warning")  # load-time options differ from the defaults
        setup.query_one("#runs", Input).value = "2"
        setup.query_one("#warmup", Input).value = "0"
        setup.query_one("#num-predict", Input).value = "30"
        await pilot.press("f5")
        await wait_until(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.session is not None)
        session = app.screen.session
        assert session.manifest.profile.name == "gpu60_ctx256_temp0p6"
        assert session.manifest.model.name == "qwen3:4b"
        assert [r.metrics.token_count for r in session.runs] == [30, 30]
        assert session.runs[0].metrics.thinking_token_count  # a thinking model: thinking shown separately
        assert app.screen.query_one("#thinking-box").display


async def test_cancel_mid_run_keeps_the_app_running(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, sim=fast_sim(tokens_per_s=100.0))
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_until(pilot, lambda: "reachable" in status_text(app, "#endpoint-status"))
        app.screen.query_one("#num-predict", Input).value = "2000"
        await pilot.press("f5")
        await wait_until(
            pilot,
            lambda: (
                isinstance(app.screen, LiveScreen)
                and app.screen._call is not None
                and app.screen._call.tokens > 3
            ),
        )
        live = app.screen
        await pilot.press("c")  # the first press only asks
        assert live.running and any("press c again" in n.message for n in app._notifications)
        await pilot.press("c")
        await wait_until(pilot, lambda: live.session is not None)
        assert live.session.status == "cancelled"
        assert live.session.runs[-1].status == "cancelled"
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen))


async def test_unreachable_endpoint_shows_a_clear_message(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_until(pilot, lambda: "reachable" in status_text(app, "#endpoint-status"))
        endpoint = app.screen.query_one("#endpoint", Input)
        endpoint.value = "http://127.0.0.1:9"
        endpoint.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: "cannot reach" in status_text(app, "#endpoint-status"))
        assert app.screen.query_one("#model", Select).value == Select.NULL
        await pilot.press("f5")
        await pilot.pause()
        assert isinstance(app.screen, SetupScreen)  # no model: refused with a notification, app alive
        assert any("no model selected" in n.message for n in app._notifications)


async def test_unknown_model_and_failing_server_are_reported(tmp_path: Path) -> None:
    sim = fast_sim()
    app, _ = make_app(tmp_path, sim=sim)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_until(pilot, lambda: "reachable" in status_text(app, "#endpoint-status"))
        sim.config.models = sim.config.models[1:]  # gemma3 vanishes after the listing
        await pilot.press("f5")
        await wait_until(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.error is not None)
        assert "model 'gemma3:latest' not found" in (app.screen.error or "")
        assert "llama3.2:3b" in (app.screen.error or "")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen))
        # a mid-stream failure: the row is marked failed, the session still saved
        sim.config.faults = SimFaults(midstream_error_after=3)
        app.screen.query_one("#model", Select).value = "llama3.2:3b"
        app.screen.query_one("#warmup", Input).value = "0"
        app.screen.query_one("#runs", Input).value = "1"
        await pilot.press("f5")
        await wait_until(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.session is not None)
        assert app.screen.session.runs[0].status == "failed"
        assert any("mid-stream" in n.message for n in app._notifications)


async def test_hostile_model_output_never_reaches_the_terminal_raw(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen))
        pane = StreamPane()
        await app.screen.mount(pane)
        pane.append("ok \x1b]52;c;ZXZpbA==\x07 \x1b[31mred\x1b[0m \x07bell\x08", "", 0)
        await pilot.pause()
        text = pane.content_text
        assert "\x1b" not in text and "\x07" not in text and "\x08" not in text
        assert "red" in text and "bell" in text


async def test_help_screen_and_theme_toggle(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen))
        await pilot.press("question_mark")
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        assert isinstance(app.screen, SetupScreen)
        before = app.theme
        await pilot.press("ctrl+t")
        assert app.theme != before
