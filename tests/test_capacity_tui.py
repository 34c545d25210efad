"""Pilot tests of the capacity screen: reached from setup (F6), runs levels against the in-process
simulator, shows the table, charts and the answer; saved capacity sessions open and compare in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from chimera_tui.core.store.sessions import load_session
from chimera_tui.ui.screens.capacity import CapacityScreen, parse_levels
from chimera_tui.ui.screens.setup import SetupScreen
from tests.helpers import fast_sim
from tests.tui_helpers import make_app, wait_until

pytestmark = pytest.mark.anyio


def test_parse_levels() -> None:
    assert parse_levels("1,2,4") == ("closed", [1.0, 2.0, 4.0])
    assert parse_levels("r 0.5, 1") == ("open", [0.5, 1.0])
    for bad in ("", "2,1", "1,1.5", "a"):
        with pytest.raises(ValueError):
            parse_levels(bad)


async def test_f6_runs_a_capacity_curve_and_opens_it_saved(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, fast_sim(tokens_per_s=400.0, num_parallel=1))
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: "reachable" in str(app.screen.query_one("#endpoint-status").render()))
        assert isinstance(app.screen, SetupScreen)
        app.screen.query_one("#num-predict", Input).value = "12"
        await pilot.press("f6")
        await wait_until(pilot, lambda: isinstance(app.screen, CapacityScreen))
        screen = app.screen
        assert isinstance(screen, CapacityScreen)
        screen.query_one("#cap-levels", Input).value = "1,2,4"
        screen.query_one("#cap-requests", Input).value = "4"
        await pilot.press("f5")
        await wait_until(pilot, lambda: screen.session is not None, timeout=60)
        table = screen.query_one("#cap-levels-table", DataTable)
        assert table.row_count == len(screen.levels) >= 2
        assert "requests queue" in screen.verdict_text  # one slot
        assert "about 1 at once" in str(screen.query_one("#cap-verdict", Static).render())
        assert screen.session is not None
        saved = load_session(screen.session.path)
        assert saved.manifest.kind == "capacity"
        await pilot.press("v")
        await wait_until(pilot, lambda: app.screen is not screen)
        view = app.screen
        assert isinstance(view, CapacityScreen) and view.saved
        assert view.query_one("#cap-levels-table", DataTable).row_count == table.row_count
        assert "requests queue" in str(view.query_one("#cap-verdict", Static).render())


async def test_bad_levels_are_refused_with_one_line(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: "reachable" in str(app.screen.query_one("#endpoint-status").render()))
        await pilot.press("f6")
        await wait_until(pilot, lambda: isinstance(app.screen, CapacityScreen))
        screen = app.screen
        assert isinstance(screen, CapacityScreen)
        screen.query_one("#cap-levels", Input).value = "4,2"
        await pilot.press("f5")
        await pilot.pause(0.1)
        assert not screen.running and screen.session is None


async def test_browser_opens_and_compares_capacity_sessions(tmp_path: Path) -> None:
    import anyio

    from chimera_tui.core.backends.ollama import Timeouts
    from chimera_tui.core.run.capacity import CapacityRunner, CapacitySpec
    from chimera_tui.core.store.profiles import Profile
    from chimera_tui.ui.screens.sessions import SessionsScreen

    root = tmp_path / "sessions"
    for slots in (1, 2):
        server = fast_sim(tokens_per_s=400.0, num_parallel=slots)
        spec = CapacitySpec(
            model="gemma3:latest",
            profile=Profile("baseline_default", "", {}, None, True),
            prompt="Say hello.",
            endpoint="http://sim",
            levels=[1, 2],
            requests=2,
            num_predict=8,
            timeouts=Timeouts(connect_s=2, first_byte_s=10, idle_s=5),
        )
        runner = CapacityRunner(spec, root, transport_factory=lambda url, s=server: s.transport())
        await anyio.to_thread.run_sync(lambda r=runner: anyio.run(r.run))
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(140, 45)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen))
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        browser = app.screen
        table = browser.query_one(DataTable)
        assert table.row_count == 2
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, CapacityScreen))
        assert app.screen.query_one("#cap-levels-table", DataTable).row_count == 2
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is browser)
        table.move_cursor(row=0)
        await pilot.press("space")
        table.move_cursor(row=1)
        await pilot.press("space")
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CapacityScreen))
        compared = app.screen
        assert isinstance(compared, CapacityScreen) and len(compared.saved) == 2
        assert compared.query_one("#cap-levels-table", DataTable).row_count == 4
