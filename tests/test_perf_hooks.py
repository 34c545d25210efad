"""The pieces added for performance: the read watchdog, the live-screen GC policy, the cached stream
log, and the benchmark hooks (off unless their environment variables are set)."""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path

import anyio
import pytest
from textual.app import App, ComposeResult

from chimera_tui.core.backends.deadline import watchdog
from chimera_tui.ui import bench_trace, live_gc
from chimera_tui.ui.widgets.stream_pane import StreamLog
from tests.tui_helpers import make_app, wait_until

MS = 1_000_000
#: a sleep the watchdog must cut short; only a watchdog that failed would let it run this long
SLEEP_S = 30.0


# -- the watchdog -----------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_watchdog_cancels_the_block_at_its_deadline_and_says_so() -> None:
    ran_finally = False
    start = time.perf_counter()
    async with watchdog(time.perf_counter_ns() + 50 * MS) as deadline:
        try:
            await anyio.sleep(SLEEP_S)
        finally:
            ran_finally = True
    assert deadline.expired and ran_finally
    # not before the deadline, and the sleep was cut short (uncancelled it would take SLEEP_S): bounds
    # that hold however busy the machine is
    assert 0.04 < time.perf_counter() - start < SLEEP_S


@pytest.mark.anyio
async def test_a_deadline_moved_later_keeps_the_block_alive_and_reset_moves_it_earlier() -> None:
    async with watchdog(time.perf_counter_ns() + 60 * MS) as deadline:
        for _ in range(5):  # 100 ms in all, the deadline always 60 ms ahead
            await anyio.sleep(0.02)
            deadline.expires_ns = time.perf_counter_ns() + 60 * MS
    assert not deadline.expired
    start = time.perf_counter()
    async with watchdog(time.perf_counter_ns() + 10_000 * MS) as deadline:
        deadline.reset(time.perf_counter_ns() + 30 * MS)  # earlier: the watchdog must look again
        await anyio.sleep(SLEEP_S)
    assert deadline.expired and time.perf_counter() - start < SLEEP_S


@pytest.mark.anyio
async def test_watchdog_lets_errors_and_outer_cancellation_through_unchanged() -> None:
    with pytest.raises(ValueError, match="boom"):  # not wrapped in an exception group
        async with watchdog(time.perf_counter_ns() + 1000 * MS):
            raise ValueError("boom")
    with anyio.move_on_after(0.03) as outer:
        async with watchdog(time.perf_counter_ns() + 1000 * MS) as deadline:
            await anyio.sleep(5)
    assert outer.cancelled_caught and not deadline.expired


# -- the live screen's GC policy ---------------------------------------------------------------------
def test_live_gc_does_nothing_unless_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_gc, "_enabled", False)
    live_gc.start()
    assert gc.isenabled() and live_gc._depth == 0
    live_gc.tick()
    live_gc.stop()


def test_live_gc_takes_over_collection_and_gives_it_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_gc, "_enabled", True)
    monkeypatch.setattr(live_gc, "_depth", 0)
    switch = sys.getswitchinterval()
    try:
        live_gc.start()
        live_gc.start()  # a second live screen: counted
        assert not gc.isenabled() and gc.get_freeze_count() > 0
        assert sys.getswitchinterval() == pytest.approx(live_gc.SWITCH_INTERVAL_S)
        for _ in range(live_gc.OLDEST_EVERY):
            live_gc.tick()
        live_gc.stop()
        assert not gc.isenabled()  # the other screen is still up
    finally:
        live_gc.stop()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert sys.getswitchinterval() == pytest.approx(switch)


# -- the stream log ----------------------------------------------------------------------------------
class _LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield StreamLog(max_lines=5, id="log")


@pytest.mark.anyio
async def test_stream_log_draws_a_changed_line_again_and_follows_pruning() -> None:
    app = _LogApp()
    async with app.run_test(size=(40, 10)) as pilot:
        log = app.query_one(StreamLog)
        log.write("abc")
        await pilot.pause()
        assert log.render_line(0).text.startswith("abc")
        log.write("def")  # the same line grows: its cached drawing must go
        await pilot.pause()
        assert log.render_line(0).text.startswith("abcdef")
        log.write("\n".join(f"line {i}" for i in range(8)))  # more than max_lines: the first go
        await pilot.pause()
        assert log.lines[0] == "line 3"
        assert log.render_line(0).text.startswith("line 3")
        log.clear()
        log.write("fresh")
        await pilot.pause()
        assert log.render_line(0).text.startswith("fresh")


# -- the benchmark hooks -----------------------------------------------------------------------------
@pytest.mark.anyio
async def test_bench_hooks_are_off_without_their_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(bench_trace.ENV_TRACE, raising=False)
    monkeypatch.delenv(bench_trace.ENV_AUTOSTART, raising=False)
    app, _sim = make_app(tmp_path, monitor_interval_s=0)
    async with app.run_test() as pilot:
        await pilot.pause(0.1)
        assert bench_trace.active() is None
        assert not [w for w in app.workers if w.group == "bench-trace"]


@pytest.mark.anyio
async def test_autostart_runs_one_session_traces_it_and_quits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace_path = tmp_path / "trace.json"
    monkeypatch.setenv(bench_trace.ENV_TRACE, str(trace_path))
    spec = {"model": "gemma3:latest", "runs": 1, "warmup": 0, "num_predict": 30}
    monkeypatch.setenv(bench_trace.ENV_AUTOSTART, json.dumps(spec))
    monkeypatch.setattr(bench_trace, "_active", None)
    monkeypatch.setattr(bench_trace.atexit, "register", lambda *_: None)
    app, _sim = make_app(tmp_path, monitor_interval_s=0)
    async with app.run_test() as pilot:
        await wait_until(pilot, trace_path.exists)
    doc = json.loads(trace_path.read_text())
    assert len(doc["token_ns"]) == len(doc["shown_ns"]) == 30
    assert all(shown >= t for t, shown in zip(doc["token_ns"], doc["shown_ns"], strict=True))
    assert [run["status"] for run in doc["runs"]] == ["ok"]
    assert doc["runs"][0]["t_send_ns"] < doc["token_ns"][0]
    assert len(doc["beat_ns"]) == len(doc["lateness_ns"]) > 0
    assert app.return_code == 0
