"""Keys and comforts of the TUI (issue 16): the README key table is the code's, `?` and the palette
list the current screen's actions, destructive keys ask first, the sessions browser fits 80 columns
and sorts by keyboard, the stream re-wraps on resize, preferences and screenshots have a home."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Log, Static
from textual.widgets._footer import FooterKey

from chimera_tui.core.store.preferences import Preferences, SetupChoices, load_preferences, save_preferences
from chimera_tui.ui.app import ChimeraApp
from chimera_tui.ui.keys import global_keys, own_bindings, palette_entries
from chimera_tui.ui.screens import (
    capacity,
    compare,
    dialogs,
    live,
    load_run,
    multi_live,
    profile_editor,
    profiles,
    session_detail,
    sessions,
    setup,
    sweep_live,
    sweep_results,
    sweep_setup,
)
from chimera_tui.ui.screens import help as help_screen
from chimera_tui.ui.screens.help import HelpScreen, help_sections
from chimera_tui.ui.screens.sessions import SessionsScreen, choose_columns
from chimera_tui.ui.second_press import SecondPress
from chimera_tui.ui.widgets.agent_pane import WAITING, AgentPane
from chimera_tui.ui.widgets.stream_pane import StreamPane
from tests.snapshots.scripted import scripted_live
from tests.test_tui_sessions import saved_session
from tests.tui_helpers import make_app, wait_until

pytestmark = pytest.mark.anyio

README = Path(__file__).resolve().parent.parent / "README.md"
SCREEN_MODULES = (
    setup,
    capacity,
    load_run,
    live,
    multi_live,
    sessions,
    session_detail,
    compare,
    profiles,
    profile_editor,
    sweep_setup,
    sweep_live,
    sweep_results,
    dialogs,
    help_screen,
)
#: how README writes a binding's key
KEY_NAMES = {"question_mark": "?", "slash": "/"}


def _readme_keys() -> dict[str, set[str]]:
    """README's key table: every backticked key of a row, by its `where`."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| key | where | action |") :].split("\n\n")[0]
    keys: dict[str, set[str]] = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        found = {k.lower() if len(k) > 1 else k for k in re.findall(r"`([^`]+)`", cells[0])}
        keys.setdefault(cells[1], set()).update(found)
    return keys


def _screen_classes() -> dict[str, list[type[Any]]]:
    by_name: dict[str, list[type[Any]]] = {}
    for module in SCREEN_MODULES:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Screen) and "HELP_NAME" in vars(value):
                by_name.setdefault(value.HELP_NAME, []).append(value)
    return by_name


def _keys_of(cls: type[Any]) -> set[str]:
    keys = set()
    for cls_ in cls.__mro__:
        if cls_.__module__.startswith("chimera_tui.") and "BINDINGS" in vars(cls_):
            for binding in vars(cls_)["BINDINGS"]:
                for key in binding.key.split(","):
                    keys.add(KEY_NAMES.get(key, key))
    return keys


def test_the_readme_key_table_is_what_the_code_binds() -> None:
    readme = _readme_keys()
    screens = _screen_classes()
    assert set(readme) == {"anywhere", *screens}  # a row per screen, no row for a screen that is gone
    app_keys = {KEY_NAMES.get(b.key, b.key) for b in own_bindings(ChimeraApp())} | {"ctrl+p"}
    assert readme["anywhere"] == app_keys
    for where, classes in screens.items():
        bound = set().union(*(_keys_of(cls) for cls in classes))
        extras = {k for cls in classes for k, _ in getattr(cls, "HELP_KEYS", ())}
        assert bound <= readme[where], f"{where}: {bound - readme[where]} bound but not in README"
        assert readme[where] - bound <= extras, f"{where}: README lists {readme[where] - bound}"


async def test_help_and_palette_offer_the_sessions_browser_actions(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, monitor_interval_s=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        browser = app.screen
        names = {name for name, _, _ in palette_entries(browser, app)}
        assert {
            "Compare",
            "Export",
            "Rename",
            "Delete",
            "Import metrics.json",
            "Clear marks",
            "Sort",
        } <= names
        sort = next(callback for name, _, callback in palette_entries(browser, app) if name == "Sort")
        before = browser.sort_column
        app.call_later(sort)  # as the palette runs a chosen command
        await wait_until(pilot, lambda: browser.sort_column != before)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_ = app.screen
        assert isinstance(help_, HelpScreen)
        (here, _, keys), (everywhere, _, global_) = help_sections(help_.under, app)
        assert here == "This screen: sessions browser" and everywhere == "Everywhere"
        assert {"Rename", "Export", "Sort", "Clear marks", "open the session under the cursor"} <= {
            action for _, action in keys
        }
        assert {"Quit", "Sessions", "Help"} <= {action for _, action in global_}  # the global keys
        assert {k.description for k in global_keys(app)} >= {"Quit", "Help", "Theme"}


async def test_the_footer_keeps_back_help_and_quit_at_80_columns(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, monitor_interval_s=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        await pilot.pause()
        actions = {k.action for k in app.screen.query(FooterKey)}
        assert {"back", "help", "quit", "sessions", "profiles", "sweeps", "mark"} <= actions


def test_sessions_columns_keep_the_figures_at_80_columns() -> None:
    narrow = [c.key for c in choose_columns(80)]
    assert {"mark", "label", "tok_s", "ttft", "cv", "status"} <= set(narrow)
    assert sum(c.width + 2 for c in choose_columns(80)) + 3 <= 80
    assert {"model", "profile", "mode"} <= {c.key for c in choose_columns(160)}


async def test_sessions_sort_by_keyboard_marks_and_clearing(tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    saved_session(root, "baseline_default", [100.0, 101.0], label="alpha")
    saved_session(root, "gpu60_ctx256_temp0p6", [90.0, 91.0], label="beta")
    app, _ = make_app(tmp_path, monitor_interval_s=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        browser = app.screen
        assert isinstance(browser, SessionsScreen)
        table = browser.query_one(DataTable)
        while browser.sort_column != "tok_s":
            await pilot.press("s")
        headers = [str(c.label) for c in table.columns.values()]
        assert "tok/s ▼" in headers  # rates sort high to low first
        assert str(table.get_row_at(0)[headers.index("label")]).startswith("alpha")
        await pilot.press("S")
        assert "tok/s ▲" in [str(c.label) for c in table.columns.values()]
        assert str(table.get_row_at(0)[headers.index("label")]).startswith("beta")
        table.move_cursor(row=0)
        await pilot.press("space", "space")
        marks = sorted(str(table.get_row_at(i)[0]) for i in range(2))
        assert marks == ["A", "B"]  # A is the baseline, as the comparison names it
        await pilot.press("u")
        assert browser.marked == [] and all(str(table.get_row_at(i)[0]) == "" for i in range(2))


async def test_quit_during_a_run_asks_first(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, monitor_interval_s=0)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        screen = scripted_live(tmp_path)
        await app.push_screen(screen)
        screen.running = True  # as if a run were going on
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert app.is_running and any("ctrl+q again" in n.message for n in app._notifications)
        screen.running = False
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not app.is_running  # nothing running: quits at once


def test_a_second_press_confirms_only_within_the_window() -> None:
    press = SecondPress(window_s=5.0)
    assert not press.confirm("cancel", now=100.0)
    assert press.confirm("cancel", now=103.0)
    assert not press.confirm("cancel", now=104.0)  # confirmed: the next press arms again
    assert not press.confirm("cancel", now=120.0)  # too late: arms again
    assert not press.confirm("back", now=121.0)  # another key does not confirm


class _PaneApp(App[None]):
    def compose(self) -> ComposeResult:
        yield StreamPane(id="pane")
        yield AgentPane(0, "gemma3:latest", "baseline_default · http://sim")


async def test_the_stream_rewraps_when_the_terminal_is_resized() -> None:
    app = _PaneApp()
    async with app.run_test(size=(100, 20)) as pilot:
        pane = app.query_one(StreamPane)
        pane.append("word " * 200, "", 0)
        await pilot.pause()
        log = pane.query_one("#content-log", Log)
        wide = max(len(str(line)) for line in log.lines)
        await pilot.resize_terminal(50, 20)
        await wait_until(pilot, lambda: max(len(str(line)) for line in log.lines) < 50)
        await pilot.resize_terminal(120, 20)
        await wait_until(pilot, lambda: max(len(str(line)) for line in log.lines) > wide)
        assert " ".join(pane.content_text.split()) == " ".join(("word " * 200).split())


async def test_a_waiting_agent_says_so() -> None:
    from chimera_tui.ui.live_state import LiveCall

    app = _PaneApp()
    async with app.run_test(size=(100, 20)) as pilot:
        pane = app.query_one(AgentPane)
        pane.show(LiveCall(0))
        await pilot.pause()
        assert str(pane.query_one(".agent-figures", Static).render()) == WAITING


def test_preferences_round_trip_and_tolerate_garbage(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "preferences.json"
    assert load_preferences(path) == Preferences()  # missing: defaults
    save_preferences(Preferences("textual-light", SetupChoices(model="m", runs="5", cold=True)), path)
    loaded = load_preferences(path)
    assert loaded.theme == "textual-light" and loaded.setup.model == "m" and loaded.setup.cold is True
    path.write_text(json.dumps({"theme": 3, "setup": {"runs": 7, "model": "x", "bogus": 1}}))
    odd = load_preferences(path)
    assert odd.theme is None and odd.setup.runs is None and odd.setup.model == "x"
    path.write_text("{ not json")
    assert load_preferences(path) == Preferences()


async def test_theme_and_setup_choices_are_remembered(tmp_path: Path) -> None:
    prefs = tmp_path / "preferences.json"
    app, _ = make_app(tmp_path, monitor_interval_s=0, preferences_path=prefs)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: "reachable" in str(app.screen.query_one("#endpoint-status").render()))
        await pilot.press("ctrl+t")
        app.screen.query_one("#runs").value = "4"  # type: ignore[attr-defined]
        app.screen.query_one("#warmup").value = "0"  # type: ignore[attr-defined]
        await pilot.press("f5")
        await wait_until(pilot, lambda: getattr(app.screen, "session", None) is not None)
    saved = json.loads(prefs.read_text())
    assert saved["theme"] == "textual-light" and saved["setup"]["runs"] == "4"
    again, _ = make_app(tmp_path, monitor_interval_s=0, preferences_path=prefs)
    async with again.run_test(size=(100, 30)) as pilot:
        await wait_until(
            pilot, lambda: again.screen.query("#runs") is not None and again.theme == "textual-light"
        )
        assert again.screen.query_one("#runs").value == "4"  # type: ignore[attr-defined]
        assert again.screen.query_one("#warmup").value == "0"  # type: ignore[attr-defined]


async def test_a_screenshot_goes_to_the_screenshots_folder(tmp_path: Path) -> None:
    shots = tmp_path / "shots"
    app, _ = make_app(tmp_path, monitor_interval_s=0, screenshots_dir=shots)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await pilot.pause()
        app.deliver_screenshot()
        files = list(shots.glob("*.svg"))
        assert len(files) == 1 and files[0].read_text().startswith("<svg")
        await pilot.pause()
        texts = [n.message for n in app._notifications]
        assert str(files[0]) in texts
        assert not any("[$" in t for t in texts)  # no raw markup


async def test_o_shows_the_session_folder_on_the_multi_agent_screen(tmp_path: Path, monkeypatch: Any) -> None:
    from tests.snapshots.scripted import fixture_app, scripted_multi

    app = fixture_app(tmp_path, monkeypatch)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        screen = scripted_multi(tmp_path)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: screen.session_path is not None)
        await pilot.press("o")
        await pilot.pause()
        assert any(n.message.endswith("demo") and n.title == "Session folder" for n in app._notifications)


async def test_setup_lists_only_real_models_and_refreshes_loaded_now_after_a_run(tmp_path: Path) -> None:
    from textual.widgets import Select

    app, _ = make_app(tmp_path, monitor_interval_s=0)
    async with app.run_test(size=(80, 24)) as pilot:
        setup = app.screen
        await wait_until(pilot, lambda: "reachable" in str(setup.query_one("#endpoint-status").render()))
        values = [value for _, value in setup.query_one("#model", Select)._options]
        assert values and Select.NULL not in values  # no selectable "(no models yet)" beside them
        assert "none" in str(setup.query_one("#loaded-models").render())
        setup.query_one("#runs").value = "1"  # type: ignore[attr-defined]
        setup.query_one("#warmup").value = "0"  # type: ignore[attr-defined]
        await pilot.press("f5")
        await wait_until(pilot, lambda: getattr(app.screen, "session", None) is not None)
        await pilot.press("escape")
        await wait_until(pilot, lambda: "gemma3" in str(setup.query_one("#loaded-models").render()))


async def test_an_ordinary_run_shows_an_eta_once_a_run_has_finished(tmp_path: Path) -> None:
    from chimera_tui.ui.screens.live import LiveScreen

    app, _ = make_app(tmp_path, monitor_interval_s=0)
    async with app.run_test(size=(80, 24)) as pilot:
        setup = app.screen
        await wait_until(pilot, lambda: "reachable" in str(setup.query_one("#endpoint-status").render()))
        setup.query_one("#runs").value = "3"  # type: ignore[attr-defined]
        setup.query_one("#warmup").value = "0"  # type: ignore[attr-defined]
        await pilot.press("f5")
        await wait_until(pilot, lambda: isinstance(app.screen, LiveScreen))
        live = app.screen
        assert isinstance(live, LiveScreen)
        await wait_until(pilot, lambda: live._calls_done >= 1)
        assert live._eta_text.startswith("ETA ")  # shown with the next run's title
        await wait_until(pilot, lambda: live.session is not None)
        assert live._eta_text == "ETA 0s"  # after the last run nothing is left
