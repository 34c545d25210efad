"""Pilot tests of the dual and shared live screens against two in-process simulators."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, RadioButton, Select

from chimera_tui.core.store.sessions import load_session
from chimera_tui.ui.app import ChimeraApp
from chimera_tui.ui.config import AppConfig
from chimera_tui.ui.screens.multi_live import MultiLiveScreen
from chimera_tui.ui.screens.setup import SetupScreen
from chimera_tui.ui.widgets.agent_pane import AgentPane
from tests.fake_nvml import FakeNvml
from tests.helpers import fast_sim
from tests.tui_helpers import wait_until

pytestmark = pytest.mark.anyio


def two_sim_app(tmp_path: Path) -> ChimeraApp:
    sims = {
        "http://a": fast_sim(tokens_per_s=300.0, num_parallel=1),
        "http://b": fast_sim(tokens_per_s=300.0),
    }
    config = AppConfig(
        endpoints=["http://a", "http://b"],
        sessions_root=tmp_path / "sessions",
        transport_factory=lambda url: sims[url].transport() if url in sims else None,  # type: ignore[arg-type,return-value]
        nvml_module=FakeNvml(gpus=1),
        idle_baseline_s=0,
        monitor_interval_s=0.05,
    )
    return ChimeraApp(config)


async def choose_mode(app: ChimeraApp, pilot, mode: str) -> SetupScreen:  # type: ignore[no-untyped-def]
    await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen))
    setup = app.screen
    await wait_until(pilot, lambda: "reachable" in str(setup.query_one("#endpoint-status").render()))
    next(rb for rb in setup.query(RadioButton) if rb.name == mode).value = True
    await pilot.pause()
    assert setup.query_one("#agent2-section").display
    await wait_until(pilot, lambda: setup.query_one("#model-b", Select).value == "gemma3:latest")
    setup.query_one("#num-predict", Input).value = "30"
    setup.query_one("#runs", Input).value = "2"
    return setup


async def test_dual_live_screen_runs_both_agents_side_by_side(tmp_path: Path) -> None:
    app = two_sim_app(tmp_path)
    async with app.run_test(size=(140, 45)) as pilot:
        await choose_mode(app, pilot, "dual")
        await pilot.press("f5")
        await wait_until(pilot, lambda: isinstance(app.screen, MultiLiveScreen))
        live = app.screen
        assert len(live.query(AgentPane)) == 2
        await wait_until(pilot, lambda: live.session is not None, timeout=60)
        assert live.query_one("#rounds", DataTable).row_count == 3  # 1 warm-up + 2 rounds
        for pane in live.query(AgentPane):
            assert pane.stream.content_text.strip()
        saved = load_session(live.session.path)
        assert saved.manifest.mode == "dual"
        assert [a.endpoint for a in saved.manifest.agents] == ["http://a", "http://b"]
        measured = [r for r in saved.rounds if not r.warmup]
        # both agents in flight at once in every round (the efficiency figure: benchmarks/concurrency.py)
        assert measured and all(r.makespan_ms < r.sum_e2e_ms for r in measured), measured
        assert saved.manifest.result.mean_capacity_efficiency_pct is not None  # solo on by default
        assert "capacity efficiency" in str(live.query_one("#phase").render())


async def test_shared_live_screen_shows_the_serialization(tmp_path: Path) -> None:
    app = two_sim_app(tmp_path)
    async with app.run_test(size=(140, 45)) as pilot:
        setup = await choose_mode(app, pilot, "shared")
        assert setup.query_one("#endpoint-b", Input).disabled
        await pilot.press("f5")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, MultiLiveScreen) and app.screen.session is not None,
            timeout=60,
        )
        session = app.screen.session
        assert session.manifest.mode == "shared"
        measured = [r for r in session.rounds if not r.warmup]
        assert measured and all(r.queue_wait_ms > 0 for r in measured), measured  # one slot: a wait
        # which cause dominates depends on how busy the machine is (a loaded machine can slow decoding
        # more than the slot wait's share); the structure does not: every round waited for the slot
        assert all(r.wait_share_pct is not None and r.wait_share_pct > 0 for r in measured), measured
        assert session.manifest.result.dominant_cause in {r.cause for r in measured}
        await pilot.press("v")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "SessionDetailScreen")


async def test_concurrency_panel_leads_with_capacity_or_says_it_is_unknown() -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import Digits, Label, Static

    from chimera_tui.core.measure.concurrency import AgentCall, SoloBaseline, round_metrics
    from chimera_tui.core.measure.metrics import CallMetrics
    from chimera_tui.ui.widgets.concurrency_panel import ConcurrencyPanel

    ms = 1_000_000

    def calls() -> list[AgentCall]:
        return [
            AgentCall(0, True, 0, 1000 * ms, CallMetrics(queue_gap_ms=0.0, eval_count=10)),
            AgentCall(1, True, 0, 2000 * ms, CallMetrics(queue_gap_ms=1000.0, eval_count=10)),
        ]

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield ConcurrencyPanel()

    solo = {i: SoloBaseline(100.0, 50.0, 1000.0) for i in range(2)}
    async with Host().run_test() as pilot:
        panel = pilot.app.query_one(ConcurrencyPanel)
        with_solo = round_metrics(0, False, calls(), solo).to_dict()
        panel.show_round(with_solo, [with_solo])
        await pilot.pause()
        assert str(panel.query_one("#efficiency", Digits).value) == "50.0"
        assert "capacity efficiency" in str(panel.query_one("#efficiency-label", Label).render())
        figures = str(panel.query_one("#round-figures", Static).render())
        assert "research 75.0%" in figures and "overlap 50.0%" in figures
        assert "capacity efficiency 50.0%" in str(panel.query_one("#capacity-line", Static).render())
        without = round_metrics(1, False, calls()).to_dict()
        panel.show_round(without, [without])
        await pilot.pause()
        assert str(panel.query_one("#efficiency", Digits).value) == "—"
        assert "capacity unknown" in str(panel.query_one("#efficiency-label", Label).render())
