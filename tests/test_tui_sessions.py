"""Pilot tests: browse sessions -> mark two -> compare -> export; rename, delete, corrupt folders, import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.store.sessions import RunRecord, SessionWriter, load_session
from chimera_tui.ui.screens.compare import CompareScreen
from chimera_tui.ui.screens.dialogs import Confirm, ExportDialog, TextPrompt
from chimera_tui.ui.screens.session_detail import SessionDetailScreen
from chimera_tui.ui.screens.sessions import SessionsScreen
from tests.tui_helpers import make_app, wait_until

pytestmark = pytest.mark.anyio


def saved_session(root: Path, profile: str, rates: list[float], label: str = "") -> Path:
    manifest = {
        "mode": "single",
        "model": {"name": "gemma3:latest"},
        "profile": {"name": profile, "options": {}},
        "workload": {"prompt_label": "short", "prompt": "Say hi", "num_predict": 64, "cold": False},
        "endpoints": [{"url": "http://sim", "version": "0.33.0"}],
    }
    if label:
        manifest["label"] = label
    w = SessionWriter(root, manifest)
    for i, rate in enumerate(rates):
        r = RunRecord(
            i,
            False,
            "ok",
            "t",
            metrics=CallMetrics(server_decode_rate=rate, ttft_ms=100.0 + i, token_count=64),
        )
        w.start_run(r)
        w.finish_run(r)
    w.finish("complete")
    return w.path


async def open_browser(app, pilot) -> SessionsScreen:  # type: ignore[no-untyped-def]
    await wait_until(pilot, lambda: type(app.screen).__name__ == "SetupScreen")
    await pilot.press("f2")
    await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen))
    return app.screen


async def test_browse_mark_two_compare_and_export(tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    saved_session(root, "baseline_default", [100.0, 101.0, 99.0, 100.5, 100.2], label="base")
    saved_session(root, "tier2_balanced", [120.0, 121.0, 119.0, 120.5, 120.2], label="tuned")
    app, _ = make_app(tmp_path, exports_dir=tmp_path / "exports")
    async with app.run_test(size=(140, 45)) as pilot:
        browser = await open_browser(app, pilot)
        table = browser.query_one(DataTable)
        assert table.row_count == 2
        # mark the baseline first, then the tuned one
        keys = [str(k.value) for k in table.rows]
        base_row = next(i for i, k in enumerate(keys) if browser.row(k).summary.label == "base")
        table.move_cursor(row=base_row)
        await pilot.press("space")
        table.move_cursor(row=1 - base_row)
        await pilot.press("space")
        assert len(browser.marked) == 2
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen))
        compare = app.screen
        assert compare.comparison.labels[0] == "base"
        assert compare.comparison.metric("server_decode_rate").columns[1].verdict == "faster"
        cells = [str(c) for c in compare.query_one("#compare-table", DataTable).get_row_at(0)]
        assert "faster" in " ".join(cells)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, ExportDialog))
        dialog = app.screen
        out = tmp_path / "exports" / "cmp.html"
        dialog.query_one("#export-path", Input).value = str(out)
        await pilot.click("#do-export")
        await wait_until(pilot, lambda: out.exists())
        html = out.read_text()
        assert "<html" in html.lower() and "faster" in html
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen))


async def test_filter_sort_open_rename_delete(tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    saved_session(root, "baseline_default", [100.0, 101.0], label="alpha")
    saved_session(root, "gpu60_ctx256_temp0p6", [90.0, 91.0], label="beta")
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(140, 45)) as pilot:
        browser = await open_browser(app, pilot)
        table = browser.query_one(DataTable)
        browser.query_one("#filter", Input).value = "gpu60"
        await pilot.pause()
        assert table.row_count == 1
        browser.query_one("#filter", Input).value = ""
        await pilot.pause()
        assert table.row_count == 2
        # sort by tok/s ascending via the header
        browser.sort_column, browser.sort_reverse = "tok_s", False
        browser.refresh_table()
        first = browser.row(str(table.coordinate_to_cell_key((0, 0)).row_key.value))
        assert first is not None and first.summary is not None and first.summary.label == "beta"
        # open it
        table.move_cursor(row=0)
        table.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionDetailScreen))
        assert "beta" in str(app.screen.query_one("#manifest", Static).render())
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        # rename
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, TextPrompt))
        app.screen.query_one(Input).value = "gamma"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        assert any(r.summary and r.summary.label == "gamma" for r in browser.rows)
        # delete with confirmation
        target = Path(browser.current_key() or "")
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.click("#yes")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen) and table.row_count == 1)
        assert not target.exists()


async def test_corrupt_folders_are_listed_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    saved_session(root, "baseline_default", [100.0, 101.0])
    (root / "broken").mkdir()
    (root / "broken" / "session.toml").write_text("= nope")
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(140, 45), notifications=True) as pilot:
        browser = await open_browser(app, pilot)
        table = browser.query_one(DataTable)
        assert table.row_count == 2
        statuses = [str(table.get_row_at(i)[-1]) for i in range(table.row_count)]
        assert "unreadable" in statuses
        table.move_cursor(row=statuses.index("unreadable"))
        table.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SessionsScreen)
        assert any("unreadable" in n.message.lower() or "broken" in n.message for n in app._notifications)


async def test_import_chimeraforge_metrics_is_kept_in_the_sessions_folder(tmp_path: Path) -> None:
    fixture = Path(__file__).parent / "fixtures" / "chimeraforge_metrics.json"
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(140, 45)) as pilot:
        browser = await open_browser(app, pilot)
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, TextPrompt))
        app.screen.query_one(Input).value = str(fixture)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionsScreen) and len(browser.rows) >= 1)
        assert all(r.summary is not None for r in browser.rows)  # saved folders, listed after a restart
        assert all(Path(r.key).parent == tmp_path / "sessions" for r in browser.rows)


async def test_live_screen_opens_the_finished_session(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: "reachable" in str(app.screen.query_one("#endpoint-status").render()))
        app.screen.query_one("#runs", Input).value = "1"
        await pilot.press("f5")
        await wait_until(pilot, lambda: getattr(app.screen, "session", None) is not None)
        await pilot.press("v")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionDetailScreen))
        saved = load_session(app.screen.session.path)
        assert saved.counts["ok"] == 1
        assert json.loads((saved.path / "metrics.json").read_text())["schema_version"] == 1
