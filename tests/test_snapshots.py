"""A few snapshots (one per screen state) at fixed sizes. Everything on screen is deterministic:
the live screen is fed scripted events with fixed stamps instead of a real run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from chimera_tui.core.backends.stream import TokenEvent
from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.run.events import RunFinished, RunStarted, SessionStarted, TokenBatch
from chimera_tui.core.store.profiles import ProfileStore
from chimera_tui.core.store.sessions import RunRecord
from chimera_tui.core.system.gpu import GpuInfo, GpuSample
from chimera_tui.core.system.monitor import HostSample, SystemSnapshot
from chimera_tui.ui.choice import BenchChoice
from chimera_tui.ui.screens.live import LiveScreen
from chimera_tui.ui.widgets.system_panel import SystemPanel
from tests.tui_helpers import make_app, wait_until

MS = 1_000_000
SIZES = [(100, 32), (80, 24)]


def _app(tmp_path: Path) -> Any:
    app, _ = make_app(tmp_path, monitor_interval_s=0)
    return app


def test_setup_screen(snap_compare: Any, tmp_path: Path) -> None:
    async def ready(pilot: Pilot[Any]) -> None:
        await wait_until(
            pilot, lambda: "reachable" in str(pilot.app.screen.query_one("#endpoint-status").render())
        )

    assert snap_compare(_app(tmp_path), terminal_size=(100, 32), run_before=ready)


def _scripted_live(pilot: Pilot[Any], tmp_path: Path) -> LiveScreen:
    profile = ProfileStore().get("tier2_balanced")
    choice = BenchChoice("http://sim", "gemma3:latest", profile, "single", "short", "Say hi", 2, 0, False, 64)
    screen = LiveScreen(choice, autostart=False)
    t0 = 10_000 * MS
    feed = screen.feed
    feed.push(
        SessionStarted(
            "20260101-000000-demo", tmp_path, "gemma3:latest", profile.name, "http://sim", "0.33.0", 2, 0
        )
    )
    words = [
        "The",
        "quick",
        "brown",
        "fox",
        "measures",
        "tokens",
        "per",
        "second",
        "on",
        "a",
        "local",
        "GPU",
        "with",
        "care",
    ]
    for run in range(2):
        feed.push(RunStarted(run, run + 1, 2, False))
        base = t0 + run * 2000 * MS
        tokens = [TokenEvent(base + (120 + 8 * i) * MS, " " + w, "content") for i, w in enumerate(words)]
        feed.push(TokenBatch(run, tokens, base))
        metrics = CallMetrics(
            ttft_ms=120.0,
            ttft_content_ms=120.0,
            e2e_ms=230.0 + run,
            client_decode_rate=125.0,
            token_count=len(tokens),
            server_decode_rate=128.0 + run,
            prompt_eval_rate=2100.0,
            load_ms=0.2,
            prompt_eval_ms=8.0,
            eval_ms=100.0,
            total_ms=229.0,
            queue_gap_ms=0.1,
            eval_count=len(tokens),
            prompt_eval_count=17,
            done_reason="stop",
        )
        feed.push(RunFinished(RunRecord(run, False, "ok", "t", metrics=metrics)))
    return screen


def _system_snapshot() -> tuple[SystemSnapshot, list[GpuInfo]]:
    host = HostSample(1, 12.5, 6 * 2**30, 24 * 2**30, 80 * 2**20)
    gpu = GpuSample(0, 87.0, 7 * 2**30, 16 * 2**30, 64.0, 250.0, 320.0, 2520, 11200)
    return SystemSnapshot(1, host, [gpu], "ok"), [GpuInfo(0, "NVIDIA GeForce RTX 4080", None, 16 * 2**30)]


def _live_test(size: tuple[int, int]) -> Any:
    def test(snap_compare: Any, tmp_path: Path) -> None:
        async def script(pilot: Pilot[Any]) -> None:
            screen = _scripted_live(pilot, tmp_path)
            await pilot.app.push_screen(screen)
            snapshot, infos = _system_snapshot()
            screen.query_one(SystemPanel).update_from(snapshot, [snapshot], infos)
            await wait_until(pilot, lambda: screen.query_one("#run-rows").row_count == 2)
            await pilot.pause()

        assert snap_compare(_app(tmp_path), terminal_size=size, run_before=script)

    return test


test_live_screen_100x32 = _live_test((100, 32))
test_live_screen_80x24 = _live_test((80, 24))
