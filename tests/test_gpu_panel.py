"""The system panel's GPU truth: the throttle indicator, the processes holding memory, the energy line
of the current run, and the simulated GPU's label."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from chimera_tui.core.system.gpu import GpuSample
from chimera_tui.core.system.gpu_processes import ProcessInfo
from chimera_tui.core.system.monitor import SystemMonitor
from chimera_tui.core.system.simulated_gpu import SimulatedNvml
from chimera_tui.ui.widgets.system_panel import (
    CSS_FILE,
    SystemPanel,
    energy_text,
    gpu_lines,
    process_line,
)
from tests.fake_nvml import GIB, FakeGpu, FakeNvml
from tests.test_system_panel import texts

pytestmark = pytest.mark.anyio


class _Host(App[None]):
    CSS_PATH = [CSS_FILE]

    def __init__(self, monitor: SystemMonitor) -> None:
        super().__init__()
        self.monitor = monitor

    def compose(self) -> ComposeResult:
        yield SystemPanel(self.monitor, refresh_s=0.02)


def test_clock_line_says_throttled_and_why() -> None:
    calm = GpuSample(0, 90.0, GIB, 2 * GIB, 70.0, 200.0, 300.0, 2520, 10501, clock_reasons=0x1)
    assert gpu_lines(calm)[2] == "clocks  SM 2520 MHz  ·  mem 10501 MHz"  # idle is not throttling
    hot = GpuSample(0, 90.0, GIB, 2 * GIB, 88.0, 300.0, 300.0, 1900, 10501, clock_reasons=0x20 | 0x4)
    assert gpu_lines(hot)[2] == "THROTTLED (power cap, thermal (software))  ·  SM 1900 MHz  ·  mem 10501 MHz"


def test_process_and_energy_lines() -> None:
    procs = [
        ProcessInfo(0, 412, "ollama", 5 * GIB, "ollama runner"),
        ProcessInfo(0, 90, "python3", None, None),
        ProcessInfo(0, 91, "\x1b[31mevil", GIB, None),
    ]
    assert process_line(procs) == "procs ollama runner 5.0 GiB (pid 412)  ·  python3 — (pid 90) +1"
    assert energy_text(12.34, 0.0964, 10.37, "now") == "now 12.3 J  ·  0.10 J/tok  ·  10.37 tok/J"
    assert energy_text(9.0, 1.0, 1.0, "last", "integrated power samples").endswith(
        "(integrated power samples)"
    )
    assert (
        energy_text(None, None, None, "last", "energy counter reset")
        == "last energy — (energy counter reset)"
    )


async def _wait_for(pilot, app: App[None], text: str) -> str:  # type: ignore[no-untyped-def]
    for _ in range(300):
        await pilot.pause(0.02)
        if text in texts(app):
            break
    return texts(app)


async def test_live_panel_shows_throttling_processes_and_energy() -> None:
    fake = FakeNvml(
        gpus=[FakeGpu(clock_reasons=0x40, processes=[(4242, 5 * GIB)])], process_names={4242: "ollama"}
    )
    mon = SystemMonitor(interval_s=0.02, nvml_module=fake, processes_every_s=0.02).start()
    try:
        assert mon.wait_ready(5)
        app = _Host(mon)
        async with app.run_test(size=(110, 30)) as pilot:
            panel = app.query_one(SystemPanel)
            panel.energy_source = lambda: energy_text(5.0, 0.05, 20.0, "now")
            out = await _wait_for(pilot, app, "procs ollama")
            assert "THROTTLED (thermal (hardware))" in out
            assert "procs ollama 5.0 GiB (pid 4242)" in out
            assert "now 5.0 J · 0.05 J/tok · 20.00 tok/J" in out
            assert panel.border_title == "System"
    finally:
        mon.stop()


async def test_simulated_gpu_is_labelled() -> None:
    mon = SystemMonitor(interval_s=0.02, nvml_module=SimulatedNvml()).start()
    try:
        assert mon.wait_ready(5) and mon.simulated
        app = _Host(mon)
        async with app.run_test(size=(110, 30)) as pilot:
            out = await _wait_for(pilot, app, "[simulated]")
            assert "Simulated GPU (demo) [simulated]" in out
            assert app.query_one(SystemPanel).border_title == "System · SIMULATED GPU"
    finally:
        mon.stop()


async def test_live_screen_shows_the_last_runs_counter_energy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chimera_tui.core.run import gpu as gpu_hook
    from chimera_tui.ui.screens.live import LiveScreen
    from tests.tui_helpers import make_app, wait_until

    monkeypatch.setattr(gpu_hook, "is_local", lambda url: True)  # the in-process simulator counts as local
    app, _ = make_app(tmp_path, nvml_module=SimulatedNvml())
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: "reachable" in str(app.screen.query_one("#endpoint-status").render()))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.session is not None)
        live = app.screen
        assert isinstance(live, LiveScreen) and live.session is not None
        last = live.session.runs[-1]
        assert last.metrics.energy_j is not None and last.gpu is not None
        assert last.gpu["gpus"][0]["method"] == "energy counter" and last.gpu["simulated"] is True
        line = live.query_one(SystemPanel).energy_line
        assert line.display and line.plain.startswith(f"last {last.metrics.energy_j:.1f} J")


def test_engine_process_mode_gives_the_live_energy_line_a_meter_of_this_process() -> None:
    """The engine's meter measures in its own process; the UI opens one of its own whose window
    follows the run events, so the live J/token line still has power samples to integrate."""
    from types import SimpleNamespace

    from chimera_tui.core.run.events import RunFinished, RunStarted
    from chimera_tui.core.run.gpu import GpuMeter, GpuOptions
    from chimera_tui.core.store.sessions import RunRecord
    from chimera_tui.ui.feed import LiveFeed
    from chimera_tui.ui.screens.live_base import LiveScreenBase
    from tests.fake_nvml import FakeGpu, FakeNvml

    fake = FakeNvml(gpus=[FakeGpu(power_mw=200_000), FakeGpu(power_mw=100_000)])
    screen = SimpleNamespace(
        runner=SimpleNamespace(gpu=GpuMeter(GpuOptions(nvml_module=fake))), feed=LiveFeed(), live_meter=None
    )
    seen: dict[str, object] = {}

    def engine(runner: object, emit: object) -> None:  # stands in for run_in_process
        emit(RunStarted(0, 1, 1, False))  # type: ignore[operator]
        meter = LiveScreenBase.energy_meter(screen)  # type: ignore[arg-type]
        seen["opened"] = meter is not runner.gpu and meter.available and len(meter._open) == 1  # type: ignore[attr-defined]
        joules, per_token, _ = meter.live(10)
        seen["live"] = joules is not None and joules > 0 and per_token == joules / 10
        emit(RunFinished(RunRecord(index=0, warmup=False, status="ok", started_at="")))  # type: ignore[operator]
        seen["closed"] = not meter._open

    LiveScreenBase._run_in_engine_process(screen, engine)  # type: ignore[arg-type]
    assert seen == {"opened": True, "live": True, "closed": True}
    assert screen.live_meter is None and len(screen.feed.drain()) == 2  # every event still reaches the screen
