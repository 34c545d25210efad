"""The measuring engine in its own process (core/run/process.py): events come back in order, cancel
reaches the child, errors come back as the same one line, the runner pickles without its callbacks.
Real sockets: the simulator on a loopback port (an in-process transport cannot cross processes)."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chimera_tui.core.errors import ChimeraError
from chimera_tui.core.run.events import RunFinished, RunStarted, SessionFinished, SessionStarted, TokenBatch
from chimera_tui.core.run.process import run_in_process
from chimera_tui.core.run.single import BenchRunner
from chimera_tui.core.store.sessions import load_session
from chimera_tui.sim import OllamaSimulator, RunningSimulator, SimConfig, start_background
from tests.helpers import spec

pytestmark = pytest.mark.slow


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    running = start_background(OllamaSimulator(SimConfig(tokens_per_s=1000.0, load_s=0.05, jitter=0.0)))
    yield running
    running.stop()


def test_runner_pickles_without_its_callback_and_flag() -> None:
    runner = BenchRunner(spec(), Path("/nonexistent"), emit=print)
    runner.cancel()
    copy = pickle.loads(pickle.dumps(runner))
    assert not copy.cancelled and copy.spec == runner.spec and copy._emit is not print


def test_events_come_back_in_order(sim: RunningSimulator, tmp_path: Path) -> None:
    runner = BenchRunner(spec(endpoint=sim.url, runs=2, num_predict=20), tmp_path)
    events: list[Any] = []
    run_in_process(runner, events.append)
    assert any(isinstance(e, SessionStarted) for e in events) and isinstance(events[-1], SessionFinished)
    kinds = [type(e) for e in events]
    assert kinds.count(RunStarted) == 3 and kinds.count(RunFinished) == 3  # 1 warm-up + 2 runs
    assert sum(len(e.tokens) for e in events if isinstance(e, TokenBatch)) == 60
    session = events[-1].session
    assert session.status == "complete" and load_session(session.path).counts["ok"] == 2
    first = next(i for i, e in enumerate(events) if isinstance(e, RunStarted))
    assert all(not isinstance(e, TokenBatch) for e in events[:first])


def test_cancel_in_the_parent_reaches_the_child(sim: RunningSimulator, tmp_path: Path) -> None:
    runner = BenchRunner(spec(endpoint=sim.url, runs=100, num_predict=500), tmp_path)
    events: list[Any] = []

    def emit(event: Any) -> None:
        events.append(event)
        if isinstance(event, TokenBatch):
            runner.cancel()

    run_in_process(runner, emit)
    session = events[-1].session
    assert session.status == "cancelled" and len(session.runs) < 100


def test_a_chimera_error_comes_back_as_one_line(sim: RunningSimulator, tmp_path: Path) -> None:
    runner = BenchRunner(spec(endpoint=sim.url, model="nope:latest"), tmp_path)
    with pytest.raises(ChimeraError) as caught:
        run_in_process(runner, lambda _e: None)
    assert caught.value.kind == "model_not_found" and "nope:latest" in str(caught.value)


@pytest.mark.anyio
async def test_the_live_screen_runs_its_engine_in_a_process(sim: RunningSimulator, tmp_path: Path) -> None:
    from textual.widgets import DataTable

    from chimera_tui.ui.app import ChimeraApp
    from chimera_tui.ui.config import AppConfig
    from chimera_tui.ui.screens.live import LiveScreen
    from tests.tui_helpers import wait_until

    config = AppConfig(
        endpoints=[sim.url], sessions_root=tmp_path / "sessions", engine_process=True, monitor_interval_s=0
    )
    app = ChimeraApp(config)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: "reachable" in str(app.screen.query_one("#endpoint-status").render()))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, LiveScreen))
        live = app.screen
        await wait_until(pilot, lambda: live.session is not None, timeout=60)
        assert live.query_one("#run-rows", DataTable).row_count == 4  # 1 warm-up + 3 runs
        assert live.session.status == "complete"


PARENT = """
import sys
from pathlib import Path
from chimera_tui.core.run.events import TokenBatch
from chimera_tui.core.run.process import run_in_process
from chimera_tui.core.run.single import BenchRunner
from tests.helpers import spec

if __name__ == "__main__":
    told = []

    def emit(event):
        if isinstance(event, TokenBatch) and not told:
            told.append(1)
            print("streaming", flush=True)

    runner = BenchRunner(spec(endpoint=sys.argv[1], runs=100, num_predict=2000), Path(sys.argv[2]))
    run_in_process(runner, emit)
"""


def test_a_killed_parent_leaves_a_cancelled_session(sim: RunningSimulator, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from chimera_tui.core.store.session_store import SessionStore

    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    parent = subprocess.Popen(
        [sys.executable, str(script), sim.url, str(tmp_path / "sessions")], stdout=subprocess.PIPE, env=env
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == b"streaming"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        status = None
        for _ in range(300):  # the child sees the pipe close, cancels, and closes the session
            rows, _ = SessionStore(tmp_path / "sessions").summaries()
            status = rows[0].status if rows else None
            if status == "cancelled":
                break
            time.sleep(0.1)
        assert status == "cancelled"
    finally:
        if parent.poll() is None:
            parent.kill()
