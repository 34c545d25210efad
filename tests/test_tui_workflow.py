"""Pilot tests of the agent-workflow workload: chosen on the setup screen, run on the live screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Collapsible, DataTable, Input, RadioButton, Select, Static

from chimera_tui.core.run.workflow.stages import stage_of
from chimera_tui.core.store.sessions import load_session
from chimera_tui.ui.screens.live import LiveScreen
from chimera_tui.ui.screens.session_detail import SessionDetailScreen
from chimera_tui.ui.screens.setup import SetupScreen
from tests.tui_helpers import make_app, wait_until

pytestmark = pytest.mark.anyio


def text(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def ready(app: Any, pilot: Any) -> SetupScreen:
    await wait_until(pilot, lambda: "reachable" in text(app.screen, "#endpoint-status"))
    return app.screen


async def test_one_workflow_run_from_the_setup_screen(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        setup = await ready(app, pilot)
        setup.query_one("#workload", Select).value = "workflow"
        await pilot.pause()
        assert setup.query_one("#data-dir", Input).display and not setup.query_one("#preset").display
        assert Path(setup.query_one("#data-dir", Input).value).is_dir()  # the bundled sample data
        setup.query_one("#runs", Input).value = "1"
        setup.query_one("#warmup", Input).value = "0"
        setup.query_one("#num-predict", Input).value = "12"
        stages_seen: set[str] = set()

        def finished() -> bool:
            screen = app.screen
            if isinstance(screen, LiveScreen) and screen.stage:
                stages_seen.add(screen.stage)
            return isinstance(screen, LiveScreen) and screen.session is not None

        await pilot.press("f5")
        await wait_until(pilot, finished)
        live = app.screen
        assert isinstance(live, LiveScreen) and live.session is not None
        session = load_session(live.session.path)
        assert session.status == "complete" and session.manifest.mode == "workflow"
        assert [stage_of(r) for r in session.runs] == ["analysis", "report"]
        assert all("workflow_run:1" in r.notes for r in session.runs)
        assert "report" in stages_seen
        # the stage is on screen: the stream title, the runs table, and the workflow's own times
        assert "stage report (2 of 2)" in text(live, "#stream-title")
        rows = live.query_one("#run-rows", DataTable)
        live_labels = [str(rows.get_row_at(i)[0]) for i in range(rows.row_count)]
        assert live_labels == ["analysis 1", "report 1"]  # the one numbering (core/store/numbering.py)
        last = text(live, "#last-call")
        assert "last workflow run 1 (ok)" in last and "ingest" in last and "report" in last
        # the session view has the workflow section
        await pilot.press("v")
        await wait_until(pilot, lambda: isinstance(app.screen, SessionDetailScreen))
        detail = app.screen
        assert detail.query_one("#detail-stages", DataTable).row_count == 2
        assert detail.query_one("#detail-workflow", DataTable).row_count == 5
        assert "agent workflow: ingest → analysis → report" in text(detail, "#manifest")
        runs = detail.query_one("#detail-runs", DataTable)
        assert [str(runs.get_row_at(i)[0]) for i in range(runs.row_count)] == live_labels  # same numbers
        # what each stage answered is readable afterwards
        texts = [str(t.render()) for t in detail.query(".stage-text")]
        assert len(texts) == 2 and all(t and t != "(no text)" for t in texts)
        assert [c.title.split(" · ")[0] for c in detail.query(Collapsible)] == live_labels


async def test_the_workflow_is_refused_in_the_multi_agent_modes(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        setup = await ready(app, pilot)
        setup.query_one("#workload", Select).value = "workflow"
        next(b for b in setup.query(RadioButton) if b.name == "shared").value = True
        await pilot.pause()
        await pilot.press("f5")
        await pilot.pause()
        assert isinstance(app.screen, SetupScreen)
        assert any("runs one agent" in n.message for n in app._notifications)
