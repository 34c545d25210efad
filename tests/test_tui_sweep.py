"""Pilot tests of sweeps in the TUI: run one to its results, cancel and resume one, save the best."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, RadioButton, Select, Static

from chimera_tui.core.measure.stats import summarize
from chimera_tui.core.run.sweep.heatmap import heatmaps_by
from chimera_tui.core.run.sweep.ranking import RankRow, smallest_p_value
from chimera_tui.core.run.sweep.record import load_sweep_record
from chimera_tui.core.store.profiles import load_profile
from chimera_tui.core.store.sessions import load_session
from chimera_tui.ui.screens.dialogs import ReportDialog, TextPrompt
from chimera_tui.ui.screens.session_detail import manifest_text
from chimera_tui.ui.screens.setup import SetupScreen
from chimera_tui.ui.screens.sweep_live import SweepLiveScreen
from chimera_tui.ui.screens.sweep_results import SweepResultsScreen
from chimera_tui.ui.screens.sweep_setup import FILE, SweepSetupScreen
from tests.helpers import fast_sim
from tests.tui_helpers import make_app, wait_until

pytestmark = pytest.mark.anyio


def sweep_file(tmp_path: Path, grid: str, **fields: Any) -> Path:
    body = {"name": "tiny", "runs": 3, "warmup": 1, "num_predict": 5, "prompt_preset": "short", **fields}
    lines = [f"{k} = {v!r}".replace("'", '"') for k, v in body.items()]
    path = tmp_path / "tiny.toml"
    path.write_text("\n".join([*lines, "[grid]", grid, ""]))
    return path


def results_shown(app: Any) -> bool:
    """The results screen is up and its ranking filled."""
    screen = app.screen
    if not isinstance(screen, SweepResultsScreen):
        return False
    tables = screen.query("#ranking")
    return bool(tables) and tables.first(DataTable).row_count > 0


def statuses(app: Any) -> list[str] | None:
    """The statuses in the sweeps screen's list, when it is the screen shown."""
    screen = app.screen
    return [r.status for r in screen.records] if isinstance(screen, SweepSetupScreen) else None


async def open_sweeps(app: Any, pilot: Any, definition: Path) -> SweepSetupScreen:
    """The sweeps screen with ``definition`` loaded from its path."""
    await wait_until(pilot, lambda: "reachable" in str(app.screen.query_one("#endpoint-status").render()))
    await pilot.press("f4")
    await wait_until(pilot, lambda: isinstance(app.screen, SweepSetupScreen))
    screen = app.screen
    screen.query_one("#sweep-def", Select).value = FILE
    await pilot.pause()
    path = screen.query_one("#sweep-path", Input)
    path.value = str(definition)
    path.focus()
    await pilot.press("enter")
    await wait_until(pilot, lambda: screen.definition is not None)
    return screen


async def test_run_a_sweep_to_its_results_and_save_the_best(tmp_path: Path) -> None:
    definition = sweep_file(tmp_path, "num_ctx = [256, 512]\ntemperature = [0.6]")
    app, _ = make_app(tmp_path, exports_dir=tmp_path / "exports")
    async with app.run_test(size=(120, 40)) as pilot:
        setup = await open_sweeps(app, pilot, definition)
        assert "3 configurations" in str(setup.query_one("#sweep-summary", Static).render())
        assert setup.query_one("#sweep-runs", Input).value == "3"  # filled from the file
        assert setup.query_one("#sweep-model", Input).value == "gemma3:latest"  # the setup screen's
        setup.query_one("#sweep-runs", Input).value = "2"  # overrides
        setup.query_one("#sweep-warmup", Input).value = "0"
        await pilot.pause()
        assert "smallest p is 0.33" in str(setup.query_one("#sweep-note", Static).render())
        await pilot.press("f5")
        await wait_until(pilot, lambda: results_shown(app))
        results = app.screen
        assert isinstance(results, SweepResultsScreen)
        record = results.record
        assert record.status == "complete" and record.definition.runs == 2 and record.definition.warmup == 0
        ranking = results.query_one("#ranking", DataTable)
        assert ranking.row_count == 3
        assert {str(ranking.get_row_at(i)[1]) for i in range(3)} == set(record.run_order)
        success = str(results.query_one("#success-line", Static).render())
        assert "significantly faster than the baseline: 0 of 2" in success and "2 run(s)" in success
        await wait_until(pilot, lambda: len(results.query(".heatmap")) == 2)  # tok/s and TTFT
        tok_map = results.query(".heatmap").first(DataTable)
        assert tok_map.row_count == 1 and len(tok_map.columns) == 3  # temperature 0.6 × num_ctx 256, 512
        assert all(float(str(cell)) > 0 for cell in tok_map.get_row_at(0)[1:])
        # every configuration's session says which sweep it belongs to
        session = load_session(record.sessions_root / record.config("baseline").session_ids[0])
        assert f"part of sweep {record.id} · configuration baseline" in manifest_text(session)
        # save the best configuration as a profile
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, TextPrompt))
        app.screen.query_one(Input).value = "tiny_best"
        await pilot.press("enter")
        best_file = tmp_path / "user_profiles" / "tiny_best.toml"
        await wait_until(pilot, lambda: best_file.is_file())
        top = next(r for r in results.rows if r.rank == 1)
        assert load_profile(best_file).options == top.options
        # export
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, ReportDialog))
        next(b for b in app.screen.query(RadioButton) if b.name == "md").value = True
        await pilot.pause()
        assert app.screen.query_one("#export-path", Input).value.endswith(f"sweep-{record.id}.md")
        out = tmp_path / "exports" / "sweep.md"
        app.screen.query_one("#export-path", Input).value = str(out)
        await pilot.click("#do-export")
        await wait_until(pilot, lambda: out.is_file())
        assert "# Parameter sweep: tiny" in out.read_text() and "Heat maps" in out.read_text()


async def test_cancel_a_sweep_then_resume_it_from_the_list(tmp_path: Path) -> None:
    definition = sweep_file(tmp_path, "num_ctx = [256, 512, 1024, 2048]", runs=2, warmup=0, num_predict=20)
    app, _ = make_app(tmp_path, sim=fast_sim(tokens_per_s=50.0))  # 0.4 s a call, about 0.85 s a config
    async with app.run_test(size=(120, 40)) as pilot:
        await open_sweeps(app, pilot, definition)
        await pilot.press("f5")  # a press waits while the process is busy (up to 2 s): calls are slow here
        await wait_until(pilot, lambda: isinstance(app.screen, SweepLiveScreen))
        live = app.screen
        assert isinstance(live, SweepLiveScreen)
        await wait_until(pilot, lambda: live.finished_steps >= 1)
        assert live.query_one("#sweep-done", DataTable).row_count >= 1
        await pilot.press("c", "c")  # the second press confirms
        await wait_until(pilot, lambda: live.record is not None)
        assert live.record is not None and live.record.status == "cancelled"
        done_before = {c.key: list(c.session_ids) for c in live.record.configs if c.status == "done"}
        assert 1 <= len(done_before) < 5
        await pilot.press("escape")
        await wait_until(pilot, lambda: statuses(app) == ["cancelled"])  # the list re-read on return
        sweeps = app.screen
        assert isinstance(sweeps, SweepSetupScreen)
        await pilot.press("r")
        await wait_until(pilot, lambda: results_shown(app), timeout=30)
        record = load_sweep_record(sweeps.records[0].path)
        assert record.status == "complete" and all(c.status == "done" for c in record.configs)
        for key, ids in done_before.items():
            assert record.config(key).session_ids == ids  # nothing measured twice
        assert app.screen.query_one("#ranking", DataTable).row_count == 5
        await pilot.press("escape")
        await wait_until(pilot, lambda: statuses(app) == ["complete"])
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen))


async def test_a_sweep_that_cannot_start_says_why_and_the_app_goes_on(tmp_path: Path) -> None:
    definition = sweep_file(tmp_path, "num_ctx = [256]", runs=1, warmup=0)
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        setup = await open_sweeps(app, pilot, definition)
        assert "Sweeps" in [c.title for c in app.get_system_commands(app.screen)]  # also in the palette
        setup.query_one("#sweep-model", Input).value = "no-such-model"
        await pilot.press("f5")
        await wait_until(pilot, lambda: getattr(app.screen, "error", None) is not None)
        live = app.screen
        assert isinstance(live, SweepLiveScreen)
        assert "no-such-model" in (live.error or "") and "not found" in (live.error or "")
        await pilot.press("escape")
        await wait_until(pilot, lambda: statuses(app) == [])  # nothing recorded: it never started


def _row(key: str, options: dict[str, Any], rate: float, baseline: bool = False) -> RankRow:
    summary = summarize([rate, rate])
    return RankRow(0, key, options, baseline, 2, summary, summarize([10.0]), None, None, None, "", None, "")


def test_heatmaps_by_splits_on_the_option_left_over_and_small_p_bounds() -> None:
    rows = [_row("baseline", {}, 50.0, baseline=True)] + [
        _row(f"c{g}{x}{t}", {"num_gpu": g, "num_ctx": x, "temperature": t}, g + x / 100 + t)
        for g in (60, 80)
        for x in (256, 512)
        for t in (0.6, 0.8)
    ]
    maps = heatmaps_by(rows, "num_gpu", "num_ctx")
    assert [m.fixed for m in maps] == [{"temperature": 0.6}, {"temperature": 0.8}]
    assert maps[0].x_values == [60, 80] and maps[0].y_values == [256, 512]
    assert maps[1].cells[1][0] == pytest.approx(60 + 5.12 + 0.8)
    assert len(heatmaps_by(rows, "num_gpu", "temperature")) == 2  # one per num_ctx
    two_way = [r for r in rows if r.options.get("temperature", 0.6) == 0.6]
    assert [m.fixed for m in heatmaps_by(two_way, "num_gpu", "num_ctx")] == [{}]
    assert smallest_p_value(1) == 1.0 and smallest_p_value(2) == pytest.approx(1 / 3)
    assert smallest_p_value(3) == pytest.approx(0.1) and smallest_p_value(4) < 0.05


async def test_the_sweep_form_sets_a_thermal_gate(tmp_path: Path) -> None:
    """`cool to °C` on the sweeps screen: the runner waits below it between configurations."""
    from chimera_tui.core.errors import ChimeraError

    definition = sweep_file(tmp_path, "num_ctx = [256]", runs=1, warmup=0)
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        setup = await open_sweeps(app, pilot, definition)
        cool = setup.query_one("#sweep-cool-to", Input)
        cool.value = "400"
        with pytest.raises(ChimeraError, match="between 0 and 150"):
            setup._gpu_options()
        cool.value = "55"
        options = setup._gpu_options()
        assert options.cool_to_c == 55.0 and options.nvml_module is app.config.nvml_module
        cool.value = ""
        assert setup._gpu_options().cool_to_c is None
