"""What the screen snapshots show, made deterministic.

- Saved sessions and a sweep come from `fixtures/sessions` (static files: see make_fixtures.py),
  copied into the test's folder; the app runs from that folder with the relative root `sessions`,
  so no path on screen depends on where pytest puts its temporary folders.
- The endpoint is the in-process simulator; NVML is the fake one; the monitor is off (the live
  screens' system panels are given one fixed reading instead).
- Live screens never run a runner: they are fed scripted events with fixed stamps, and the test
  waits until every stream pane has stopped streaming (its scrollbar is back) before the shot.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from chimera_tui.core.backends.stream import TokenEvent
from chimera_tui.core.measure.metrics import CallMetrics
from chimera_tui.core.run.events import (
    RoundFinished,
    RoundStarted,
    RunFinished,
    RunStarted,
    SessionFinished,
    SessionStarted,
    TokenBatch,
)
from chimera_tui.core.run.sweep import (
    ConfigFinished,
    ConfigStarted,
    SweepRecord,
    SweepRunner,
    SweepStarted,
    load_sweep_record,
)
from chimera_tui.core.store.profiles import ProfileStore
from chimera_tui.core.store.sessions import RunRecord, Session, load_session
from chimera_tui.core.system.gpu import GpuInfo, GpuSample
from chimera_tui.core.system.monitor import HostSample, SystemSnapshot
from chimera_tui.ui.app import ChimeraApp
from chimera_tui.ui.choice import AgentChoice, BenchChoice
from chimera_tui.ui.config import AppConfig
from chimera_tui.ui.feed import LiveFeed
from chimera_tui.ui.screens.live import LiveScreen
from chimera_tui.ui.screens.multi_live import MultiLiveScreen
from chimera_tui.ui.screens.sweep_live import SweepLiveScreen
from chimera_tui.ui.widgets.stream_pane import StreamPane
from chimera_tui.ui.widgets.system_panel import SystemPanel
from tests.fake_nvml import FakeNvml
from tests.helpers import fast_sim
from tests.tui_helpers import wait_until

FIXTURES = Path(__file__).parent / "fixtures" / "sessions"
SESSIONS = Path("sessions")
MS = 1_000_000
T0 = 10_000 * MS
TEXT = (
    "The quick brown fox measures tokens per second on a local GPU with care, and the server "
    "answers with its own figures: eval rate, prompt rate, load time and the queue gap."
)
WORDS = TEXT.split()


def fixture_app(tmp_path: Path, monkeypatch: Any) -> ChimeraApp:
    """The app on the simulator, run from `tmp_path`, with the fixture sessions and sweep saved."""
    shutil.copytree(FIXTURES, tmp_path / SESSIONS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHIMERA_TUI_PROFILES", "user_profiles")  # shown on the profiles screen
    sim = fast_sim()
    config = AppConfig(
        endpoints=["http://sim"],
        sessions_root=SESSIONS,
        exports_dir=Path("exports"),
        transport_factory=lambda url: sim.transport(),
        nvml_module=FakeNvml(gpus=1),
        monitor_interval_s=0,
    )
    return ChimeraApp(config)


def session(label: str) -> Session:
    """A fixture session by its label (`base`, `tuned`) or mode (`shared`)."""
    for folder in sorted(SESSIONS.iterdir()):
        if (folder / "session.toml").is_file():
            loaded = load_session(folder)
            if label in (loaded.manifest.label, loaded.manifest.mode):
                return loaded
    raise LookupError(label)


def sweep_record() -> SweepRecord:
    return load_sweep_record(next(SESSIONS.glob("sweeps/*")))


async def settle(pilot: Pilot[Any], done: Callable[[], bool] = lambda: True) -> None:
    """Wait for `done`, for every stream pane to stop streaming, and for nothing left scheduled."""
    await wait_until(pilot, done)
    await wait_until(pilot, lambda: not any(p._is_streaming for p in pilot.app.screen.query(StreamPane)))
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False  # a blinking cursor is on or off depending on when the shot is taken
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def setup_ready(pilot: Pilot[Any]) -> None:
    """The setup screen has probed the simulator and listed its models (other screens read them)."""
    await wait_until(
        pilot, lambda: "reachable" in str(pilot.app.screen.query_one("#endpoint-status").render())
    )
    app: Any = pilot.app
    await wait_until(pilot, lambda: app.endpoint_and_model()[1] != "")
    await pilot.pause()


def system_reading(screen: Any) -> None:
    """One fixed GPU / host reading in the screen's system panel."""
    host = HostSample(1, 12.5, 6 * 2**30, 24 * 2**30, 80 * 2**20)
    gpu = GpuSample(0, 87.0, 7 * 2**30, 16 * 2**30, 64.0, 250.0, 320.0, 2520, 11200)
    snapshot = SystemSnapshot(1, host, [gpu], "ok")
    screen.query_one(SystemPanel).update_from(
        snapshot, [snapshot], [GpuInfo(0, "NVIDIA GeForce RTX 4080", None, 16 * 2**30)]
    )


def _tokens(t_send: int, count: int, shift: int = 0, gap_ms: int = 8) -> list[TokenEvent]:
    return [
        TokenEvent(t_send + (120 + gap_ms * i) * MS, " " + WORDS[(i + shift) % len(WORDS)], "content")
        for i in range(count)
    ]


def _metrics(tokens: int, rate: float, ttft: float = 120.0) -> CallMetrics:
    return CallMetrics(
        ttft_ms=ttft,
        ttft_content_ms=ttft,
        e2e_ms=ttft + tokens * 8,
        client_decode_rate=rate - 3,
        token_count=tokens,
        server_decode_rate=rate,
        prompt_eval_rate=2100.0,
        load_ms=0.2,
        prompt_eval_ms=8.0,
        eval_ms=tokens * 8.0,
        total_ms=ttft + tokens * 8 - 1,
        queue_gap_ms=0.1,
        eval_count=tokens,
        prompt_eval_count=17,
        done_reason="length",
    )


def scripted_live(tmp_path: Path) -> LiveScreen:
    """A single run of two calls, both finished, fed scripted events with fixed stamps."""
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


def scripted_multi(tmp_path: Path) -> MultiLiveScreen:
    """A shared run of two agents without a solo baseline, three rounds done, fed scripted events
    (the rounds' figures are the fixture shared session's)."""
    profile = ProfileStore().get("baseline_default")
    second = AgentChoice("http://sim", "gemma3:latest", profile)
    choice = BenchChoice(
        "http://sim",
        "gemma3:latest",
        profile,
        "shared",
        "short",
        "Say hi",
        3,
        0,
        False,
        32,
        second=second,
        solo_baseline=False,  # as the fixture session ran: no solo calls, so capacity is unknown
    )
    screen = MultiLiveScreen(choice, autostart=False)
    feed = screen.feed
    feed.push(
        SessionStarted(
            "20260115-120000-demo",
            SESSIONS / "demo",
            "gemma3:latest",
            profile.name,
            "http://sim",
            "0.33.0",
            3,
            0,
        )
    )
    rounds = [r.to_dict() for r in session("shared").rounds]
    index = 0
    for number, metrics in enumerate(rounds[:3], start=1):
        feed.push(RoundStarted(number - 1, number, 3, False))
        base = T0 + number * 2000 * MS
        for agent in (0, 1):
            feed.push(RunStarted(index + agent, number, 3, False, base, agent=agent))
        for agent in (0, 1):
            t_send = base + agent * 300 * MS
            tokens = _tokens(t_send, 24, shift=agent * 5 + number, gap_ms=8 + agent)
            feed.push(TokenBatch(index + agent, tokens, t_send, agent))
        for agent in (0, 1):
            record = RunRecord(
                index + agent, False, "ok", "t", metrics=_metrics(24, 125.0 - agent), agent=agent
            )
            feed.push(RunFinished(record))
        feed.push(RoundFinished(number - 1, metrics))
        index += 2
    return screen


def scripted_sweep() -> SweepLiveScreen:
    """The fixture sweep's definition, three of five configurations done, the fourth streaming."""
    record = sweep_record()
    feed = LiveFeed()
    runner = SweepRunner(
        record.definition, SESSIONS, endpoint="http://sim", model="gemma3:latest", emit=feed.push
    )
    screen = SweepLiveScreen(runner, feed, autostart=False)
    keys = record.run_order
    feed.push(
        SweepStarted(
            record.id, keys, record.definition.runs, SESSIONS / "sweeps" / record.id, "sequential", len(keys)
        )
    )
    sessions = {c.key: c.session_ids[0] for c in record.configs}
    for i, key in enumerate(keys[:4]):
        config = record.config(key)
        feed.push(ConfigStarted(i, len(keys), key, config.options))
        for run in range(record.definition.runs):
            feed.push(RunStarted(run, run + 1, record.definition.runs, False, T0))
            feed.push(TokenBatch(run, _tokens(T0, 16, shift=i + run), T0))
            if i < 3:
                feed.push(RunFinished(RunRecord(run, False, "ok", "t", metrics=_metrics(16, 125.0))))
        if i < 3:
            feed.push(SessionFinished(load_session(SESSIONS / sessions[key])))
            reload = config.reload_load_ms[0] if config.reload_load_ms else None
            feed.push(ConfigFinished(i, key, sessions[key], "done", reload))
    return screen
