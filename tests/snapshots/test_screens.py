"""Every screen at 80x24 and at 160x48, on fixed data (see scripted.py for what is frozen and how).

Regenerate after a deliberate change of what a screen shows:
    .venv/bin/python -m pytest tests/snapshots --snapshot-update
and look at the report (snapshot_report.html) before committing the new SVGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, RadioButton

from chimera_tui.core.store.profiles import ProfileStore
from chimera_tui.ui.screens.compare import CompareScreen
from chimera_tui.ui.screens.dialogs import ReportDialog
from chimera_tui.ui.screens.help import HelpScreen
from chimera_tui.ui.screens.load_run import LoadScreen
from chimera_tui.ui.screens.profile_editor import ProfileEditorScreen
from chimera_tui.ui.screens.profiles import ProfilesScreen
from chimera_tui.ui.screens.session_detail import SessionDetailScreen
from chimera_tui.ui.screens.sessions import SessionsScreen
from chimera_tui.ui.screens.sweep_results import SweepResultsScreen
from chimera_tui.ui.screens.sweep_setup import SweepSetupScreen
from tests.snapshots.scripted import (
    fixture_app,
    scripted_live,
    scripted_multi,
    scripted_sweep,
    session,
    settle,
    setup_ready,
    sweep_record,
    system_reading,
)

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


def _rows(screen_type: type[Screen[Any]], table: str, count: int) -> Any:
    """A predicate: the screen on top is `screen_type` and its `table` has `count` rows or more."""

    def ready(app: Any) -> bool:
        screen = app.screen
        if not isinstance(screen, screen_type):
            return False
        tables = screen.query(table)
        return bool(tables) and tables.first(DataTable).row_count >= count

    return ready


def _shot(snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int], script: Any) -> bool:
    app = fixture_app(tmp_path, monkeypatch)

    async def run_before(pilot: Pilot[Any]) -> None:
        await setup_ready(pilot)
        await script(pilot)

    return bool(snap_compare(app, terminal_size=size, run_before=run_before))


@pytest.mark.parametrize("size", SIZES)
def test_setup(snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int]) -> None:
    async def script(pilot: Pilot[Any]) -> None:
        await settle(pilot)

    assert _shot(snap_compare, tmp_path, monkeypatch, size, script)


@pytest.mark.parametrize("size", SIZES)
def test_setup_shared(snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int]) -> None:
    """Agent 2's block (labelled selects) appears below the form; the mode radio does not move."""

    async def script(pilot: Pilot[Any]) -> None:
        shared = next(b for b in pilot.app.screen.query(RadioButton) if b.name == "shared")
        shared.value = True
        await settle(pilot, lambda: pilot.app.screen.query_one("#agent2-section").display)

    assert _shot(snap_compare, tmp_path, monkeypatch, size, script)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int]) -> None:
    async def script(pilot: Pilot[Any]) -> None:
        await pilot.press("question_mark")
        await settle(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))

    assert _shot(snap_compare, tmp_path, monkeypatch, size, script)


@pytest.mark.parametrize("size", SIZES)
def test_load(snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int]) -> None:
    async def script(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(LoadScreen())
        await settle(pilot, lambda: isinstance(pilot.app.screen, LoadScreen))

    assert _shot(snap_compare, tmp_path, monkeypatch, size, script)


@pytest.mark.parametrize("size", SIZES)
def test_live(snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int]) -> None:
    async def script(pilot: Pilot[Any]) -> None:
        screen = scripted_live(Path("sessions"))
        await pilot.app.push_screen(screen)
        system_reading(screen)
        await settle(pilot, lambda: screen.query_one("#run-rows", DataTable).row_count == 2)

    assert _shot(snap_compare, tmp_path, monkeypatch, size, script)


@pytest.mark.parametrize("size", SIZES)
def test_multi_live(snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int]) -> None:
    async def script(pilot: Pilot[Any]) -> None:
        screen = scripted_multi(tmp_path)
        await pilot.app.push_screen(screen)
        system_reading(screen)
        await settle(pilot, lambda: screen.query_one("#rounds", DataTable).row_count == 3)

    assert _shot(snap_compare, tmp_path, monkeypatch, size, script)


@pytest.mark.parametrize("size", SIZES)
def test_sessions(snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int]) -> None:
    async def script(pilot: Pilot[Any]) -> None:
        await pilot.press("f2")
        await settle(pilot, lambda: _rows(SessionsScreen, "DataTable", 8)(pilot.app))

    assert _shot(snap_compare, tmp_path, monkeypatch, size, script)


@pytest.mark.parametrize("size", SIZES)
def test_session_detail(snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int]) -> None:
    async def script(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(SessionDetailScreen(session("base")))
        await settle(pilot, lambda: isinstance(pilot.app.screen, SessionDetailScreen))

    assert _shot(snap_compare, tmp_path, monkeypatch, size, script)


@pytest.mark.parametrize("size", SIZES)
def test_session_detail_shared(
    snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int]
) -> None:
    async def script(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(SessionDetailScreen(session("shared")))
        await settle(pilot, lambda: isinstance(pilot.app.screen, SessionDetailScreen))

    assert _shot(snap_compare, tmp_path, monkeypatch, size, script)


@pytest.mark.parametrize("size", SIZES)
def test_export_dialog(snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int]) -> None:
    async def script(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(SessionDetailScreen(session("base")))
        await settle(pilot, lambda: isinstance(pilot.app.screen, SessionDetailScreen))
        await pilot.press("e")
        await settle(pilot, lambda: isinstance(pilot.app.screen, ReportDialog))

    assert _shot(snap_compare, tmp_path, monkeypatch, size, script)


@pytest.mark.parametrize("size", SIZES)
def test_compare(snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int]) -> None:
    async def script(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(CompareScreen([session("base"), session("tuned")]))
        await settle(pilot, lambda: _rows(CompareScreen, "#compare-table", 1)(pilot.app))

    assert _shot(snap_compare, tmp_path, monkeypatch, size, script)


@pytest.mark.parametrize("size", SIZES)
def test_profiles(snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int]) -> None:
    async def script(pilot: Pilot[Any]) -> None:
        await pilot.press("f3")
        await settle(pilot, lambda: isinstance(pilot.app.screen, ProfilesScreen))

    assert _shot(snap_compare, tmp_path, monkeypatch, size, script)


@pytest.mark.parametrize("size", SIZES)
def test_profile_editor(snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int]) -> None:
    async def script(pilot: Pilot[Any]) -> None:
        store = ProfileStore()
        editor = ProfileEditorScreen(store, store.get("tier2_balanced"), name="tier2_copy")
        await pilot.app.push_screen(editor)
        await settle(pilot, lambda: isinstance(pilot.app.screen, ProfileEditorScreen))

    assert _shot(snap_compare, tmp_path, monkeypatch, size, script)


@pytest.mark.parametrize("size", SIZES)
def test_sweep_setup(snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int]) -> None:
    async def script(pilot: Pilot[Any]) -> None:
        await pilot.press("f4")
        await settle(pilot, lambda: _rows(SweepSetupScreen, "#sweep-list", 1)(pilot.app))

    assert _shot(snap_compare, tmp_path, monkeypatch, size, script)


@pytest.mark.parametrize("size", SIZES)
def test_sweep_live(snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int]) -> None:
    async def script(pilot: Pilot[Any]) -> None:
        screen = scripted_sweep()
        await pilot.app.push_screen(screen)
        await settle(pilot, lambda: screen.query_one("#sweep-done", DataTable).row_count == 3)

    assert _shot(snap_compare, tmp_path, monkeypatch, size, script)


@pytest.mark.parametrize("size", SIZES)
def test_sweep_results(snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int]) -> None:
    async def script(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(SweepResultsScreen(sweep_record()))
        await settle(pilot, lambda: _rows(SweepResultsScreen, "#ranking", 5)(pilot.app))
        await settle(pilot, lambda: len(pilot.app.screen.query(".heatmap")) >= 2)

    assert _shot(snap_compare, tmp_path, monkeypatch, size, script)


def _capacity_session(tmp_path: Path, name: str, rates: list[float]) -> Any:
    """A saved-looking capacity session on made-up levels: `rates[i]` is each stream's tok/s at level i."""
    from chimera_tui.core.measure.capacity import ServerHints, Slo, levels_from, stop_rule, verdict
    from chimera_tui.core.measure.metrics import CallMetrics
    from chimera_tui.core.store.manifest import CapacityRecord, EndpointRecord, Manifest, ModelRecord
    from chimera_tui.core.store.manifest import ProfileRecord as Prof
    from chimera_tui.core.store.sessions import RunRecord, Session

    loads, runs = [1.0, 2.0, 4.0][: len(rates)], []
    for level, (load, rate) in enumerate(zip([1.0, 2.0, 4.0], rates, strict=False)):
        for s in range(int(load)):
            for k in range(4):
                offsets = [(i + 1) * 1000 / rate for i in range(50)]
                m = CallMetrics(
                    ttft_ms=offsets[0], e2e_ms=offsets[-1], client_decode_rate=rate, queue_gap_ms=0.0
                )
                runs.append(
                    RunRecord(len(runs), False, "ok", "", metrics=m, token_offsets_ms=offsets, level=level,
                              t_send_ms=k * offsets[-1] + s)
                )  # fmt: skip
    levels = levels_from(loads, runs, Slo())
    rule = stop_rule(levels, Slo()) or "levels_done"
    v = verdict(levels, "closed", rule, Slo(), ServerHints(kind="ollama"))
    manifest = Manifest(
        kind="capacity",
        id=name,
        mode="capacity",
        model=ModelRecord(name="gemma3:latest"),
        profile=Prof(name=name),
        endpoints=[EndpointRecord(url="http://127.0.0.1:11434")],
        capacity=CapacityRecord(loop="closed", levels=loads, verdict=v.to_dict()),
    )
    return Session(tmp_path / name, manifest, runs, "complete", {})


@pytest.mark.parametrize("size", SIZES)
def test_capacity(snap_compare: Any, tmp_path: Path, monkeypatch: Any, size: tuple[int, int]) -> None:
    from chimera_tui.ui.screens.capacity import CapacityScreen

    sessions = [
        _capacity_session(tmp_path, "compute-bound", [100.0, 50.0, 25.0]),
        _capacity_session(tmp_path, "independent", [100.0, 100.0, 100.0]),
    ]

    async def script(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(CapacityScreen(sessions=sessions))
        await settle(pilot, lambda: _rows(CapacityScreen, "#cap-levels-table", 5)(pilot.app))

    assert _shot(snap_compare, tmp_path, monkeypatch, size, script)
