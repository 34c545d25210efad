"""Pilot tests of the profiles screen and editor: live validation, save, duplicate, delete, diff."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, DataTable, Input, Select, Static

from chimera_tui.core.store.profiles import OPTION_SPECS, diff_options, load_profile
from chimera_tui.ui.screens.dialogs import Confirm
from chimera_tui.ui.screens.profile_editor import ProfileEditorScreen, parse_value
from chimera_tui.ui.screens.profiles import ProfileDiffScreen, ProfilesScreen
from chimera_tui.ui.screens.setup import SetupScreen
from tests.tui_helpers import make_app, wait_until

pytestmark = pytest.mark.anyio


def text(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def messages(app: Any) -> list[str]:
    return [n.message for n in app._notifications]


async def open_profiles(app: Any, pilot: Any) -> ProfilesScreen:
    await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen))
    await pilot.press("f3")
    await wait_until(pilot, lambda: isinstance(app.screen, ProfilesScreen))
    return app.screen


def select_row(screen: ProfilesScreen, name: str) -> None:
    table = screen.query_one(DataTable)
    table.move_cursor(row=table.get_row_index(name))


async def test_create_a_profile_with_live_validation_and_use_it_in_setup(tmp_path: Path) -> None:
    user_dir = tmp_path / "user_profiles"
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        profiles = await open_profiles(app, pilot)
        assert "Profiles" in [c.title for c in app.get_system_commands(app.screen)]  # also in the palette
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfileEditorScreen))
        editor = app.screen
        assert isinstance(editor, ProfileEditorScreen)
        assert editor.query_one("#save", Button).disabled  # no name yet
        await pilot.press(*"fast_ctx")  # the name field has the focus
        editor.query_one("#opt-num_ctx", Input).value = "-5"
        editor.query_one("#opt-temperature", Input).value = "0.3"
        await pilot.pause()
        error = editor.query_one("#err-num_ctx", Static)
        assert error.display and "must be an integer >= 1" in str(error.render())
        assert "num_ctx" in text(editor, "#editor-status")
        assert editor.query_one("#save", Button).disabled
        await pilot.press("ctrl+s")  # refused while invalid
        assert isinstance(app.screen, ProfileEditorScreen) and not (user_dir / "fast_ctx.toml").exists()
        editor.query_one("#opt-num_ctx", Input).value = "4096"
        editor.query_one("#opt-stop", Input).value = '["User:"]'
        await pilot.pause()
        assert not editor.query_one("#err-num_ctx", Static).display
        assert not editor.query_one("#save", Button).disabled
        diff = text(editor, "#editor-diff")
        assert "+ num_ctx = 4096 (load-time)" in diff and "+ temperature = 0.3" in diff
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfilesScreen))
        saved = load_profile(user_dir / "fast_ctx.toml")
        assert saved.options == {"num_ctx": 4096, "temperature": 0.3, "stop": ["User:"]}
        assert profiles.current_name() == "fast_ctx"
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen))
        setup = app.screen
        assert isinstance(setup, SetupScreen)
        assert "fast_ctx" in setup.profiles  # re-read when the setup screen came back
        setup.query_one("#profile", Select).value = "fast_ctx"  # an option of the Select now
        await pilot.pause()
        assert "num_ctx = 4096" in text(setup, "#profile-preview")


async def test_a_bad_name_is_shown_next_to_the_field(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_profiles(app, pilot)
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfileEditorScreen))
        editor = app.screen
        editor.query_one("#profile-name", Input).value = "bad name!"
        await pilot.pause()
        assert "letters, digits" in text(editor, "#err-name")
        assert editor.query_one("#save", Button).disabled
        await pilot.press("escape")  # unsaved changes: the first press only asks
        await pilot.pause()
        assert app.screen is editor
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfilesScreen))


async def test_builtins_are_read_only_duplicate_then_delete_the_copy(tmp_path: Path) -> None:
    user_dir = tmp_path / "user_profiles"
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        profiles = await open_profiles(app, pilot)
        select_row(profiles, "tier2_balanced")
        await pilot.press("e")
        await pilot.press("delete")
        await pilot.pause()
        assert isinstance(app.screen, ProfilesScreen)  # neither the editor nor a confirmation
        assert any("duplicate it" in m for m in messages(app))
        assert any("cannot be deleted" in m for m in messages(app))
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfileEditorScreen))
        editor = app.screen
        assert editor.query_one("#profile-name", Input).value == "tier2_balanced_copy"
        builtin = profiles.profiles["tier2_balanced"]
        assert "vs tier2_balanced: name tier2_balanced → tier2_balanced_copy" in text(editor, "#editor-diff")
        editor.query_one("#opt-seed", Input).value = "42"
        await pilot.pause()
        await pilot.click("#save")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfilesScreen))
        copy = user_dir / "tier2_balanced_copy.toml"
        assert load_profile(copy).options == {**builtin.options, "seed": 42}
        assert profiles.current_name() == "tier2_balanced_copy"
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.click("#yes")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfilesScreen) and not copy.exists())
        assert "tier2_balanced_copy" not in profiles.query_one(DataTable).rows
        assert (profiles.store.builtin_dir / "tier2_balanced.toml").is_file()


async def test_diff_shows_changed_options_and_load_time_ones(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        profiles = await open_profiles(app, pilot)
        select_row(profiles, "gpu60_ctx256_temp0p6")
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfileDiffScreen))
        diff = app.screen
        table = diff.query_one(DataTable)
        # against the baseline (the default B): every option is only in A
        assert table.row_count == 3
        assert "3 only in A" in text(diff, "#diff-summary")
        diff.query_one("#diff-other", Select).value = "gpu80_ctx256_temp0p6"
        await wait_until(pilot, lambda: table.row_count == 1)
        cells = [str(c) for c in table.get_row_at(0)]
        assert cells[:4] == ["num_gpu", "60", "80", "changed"] and "reload" in cells[4]
        assert "num_gpu 60→80 makes Ollama reload" in text(diff, "#diff-summary")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ProfilesScreen))


def test_field_parsing_and_option_diffs() -> None:
    specs = OPTION_SPECS
    assert parse_value(specs["num_ctx"], " 2048 ") == 2048
    assert parse_value(specs["temperature"], "1") == 1.0 and parse_value(specs["use_mmap"], "false") is False
    assert parse_value(specs["stop"], '["\\n", "User:"]') == ["\n", "User:"]
    for spec, text, expected in (
        ("num_ctx", "0", "must be an integer >= 1"),
        ("num_ctx", "12abc", "must be an integer >= 1"),
        ("temperature", "inf", "between 0 and 5"),
        ("top_p", "1\nnum_ctx = 5", "between 0 and 1"),
        ("stop", "User:", 'e.g. ["\\n", "User:"]'),
    ):
        with pytest.raises(ValueError, match=re.escape(expected)):
            parse_value(specs[spec], text)
    before, after = {"num_ctx": 2048, "top_k": 40, "seed": 1}, {"num_ctx": 512, "seed": 1, "stop": ["x"]}
    changes = diff_options(before, after)
    assert [c.text() for c in changes] == [
        "num_ctx 2048 → 512 (load-time)",
        "− top_k (was 40)",
        '+ stop = ["x"]',
    ]
