"""Issue 15, item 7 (TUI): SIGTERM, and SIGHUP when the terminal goes away, end the app as ctrl+q
does: the run in flight is recorded as cancelled and the session closed. A real signal sent to this
process while a Pilot-driven app streams from the simulator."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from chimera_tui.cli.signals import AppStopSignals
from chimera_tui.ui.screens.live import LiveScreen
from tests.helpers import fast_sim
from tests.tui_helpers import make_app, wait_until

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
async def test_a_stop_signal_cancels_the_run_in_flight_and_closes_the_session(
    tmp_path: Path, sig: signal.Signals
) -> None:
    app, _ = make_app(tmp_path, sim=fast_sim(tokens_per_s=100.0))

    def reachable() -> bool:
        return "reachable" in str(app.screen.query_one("#endpoint-status", Static).render())

    def streaming() -> bool:
        screen = app.screen
        return isinstance(screen, LiveScreen) and screen._call is not None and screen._call.tokens > 3

    with AppStopSignals(app) as stop:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, reachable)
            app.screen.query_one("#num-predict", Input).value = "2000"
            await pilot.press("f5")
            await wait_until(pilot, streaming)
            os.kill(os.getpid(), sig)
            await wait_until(pilot, lambda: not app.is_running, timeout=10)
    assert stop.received == sig and stop.exit_code == 128 + sig
    (folder,) = [p for p in (tmp_path / "sessions").iterdir() if p.is_dir()]
    deadline = time.monotonic() + 10
    while json.loads((folder / "metrics.json").read_text())["status"] == "running":
        assert time.monotonic() < deadline, "the session was never closed"
        time.sleep(0.05)
    doc = json.loads((folder / "metrics.json").read_text())
    assert doc["status"] == "cancelled"
    assert doc["runs"][-1]["status"] == "cancelled" and doc["runs"][-1]["response"]  # partial tokens
